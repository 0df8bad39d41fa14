// Package middleware has the handler middleware services reach for most:
// a per-attempt timeout (Timeout), a rate limit (RateLimit) and a log line
// per attempt (Log). Add them to a subscription with bus.Use, or to every
// subscription of a Subscriber with bus.UseSubscriber.
//
// Each runs inside the subscription's retry pipeline, so it sees every
// attempt of a message (Message.Delivery.Attempt). Panics need no
// middleware: the pipeline turns a handler's panic into a *bus.PanicError
// and treats it as the attempt's error.
package middleware
