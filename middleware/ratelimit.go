package middleware

import (
	"context"

	"golang.org/x/time/rate"

	"github.com/busline/bus"
)

// RateLimit lets attempts through at most as fast as l allows, waiting for
// l before each one: every subscription (or Subscriber) sharing l shares
// its rate. The wait ends with the handler's context; the attempt then
// returns the context's error without calling the handler, and the message
// is left for redelivery like any message whose handler context ended. It
// panics when l is nil.
func RateLimit(l *rate.Limiter) bus.Middleware {
	if l == nil {
		panic("middleware: RateLimit with a nil limiter")
	}
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, m *bus.Message) error {
			if err := l.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// The wait would outlast the context's deadline: handle
				// now rather than fail a message for the limiter's sake.
			}
			return next(ctx, m)
		}
	}
}
