// Package otelbus records OpenTelemetry traces and metrics of busline
// publishes and handler calls. It is a package of its own so that
// applications without OpenTelemetry never import it.
//
// Wire it once per Publisher and Subscriber:
//
//	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
//		propagation.TraceContext{}, propagation.Baggage{})) // the default propagator is a no-op
//	o := otelbus.New(otelbus.System("kafka"), otelbus.Group("billing"))
//	pub = bus.UsePublisher(pub, o.PublishMiddleware())
//	sub = bus.UseSubscriber(sub, o.Middleware())
//
// New takes the TracerProvider, MeterProvider and Propagator (defaults:
// OpenTelemetry's globals), System (messaging.system), Group
// (messaging.consumer.group.name: the middleware cannot see a
// subscription's bus.Group), Retry (the subscription's retry policy, to
// tell a retried attempt from the last one) and Attributes (extra span
// attributes). Middleware takes the same options per subscription:
// bus.Use(o.Middleware(otelbus.Group("audit"))).
//
// # Off
//
// A provider that records nothing — OpenTelemetry's no-op providers
// (trace/noop, metric/noop, trace.NewNoopTracerProvider), or the global
// ones while the application has installed no SDK — turns its half off:
// no span is started, no instrument touched. With both off the
// middlewares only pass on a trace context that arrived from elsewhere
// (the caller's context into published messages, a message's Metadata
// into the handler's context, as OpenTelemetry's no-op tracer does) and
// allocate nothing. The global providers are asked at every call, so an
// SDK installed after New is used from then on. scripts/bench-otelbus.sh
// measures each set-up (otelbus/README.md has the numbers).
//
// # Traces
//
// Publish: one span "send <topic>" of kind Producer per Publish call
// (messaging.operation.type "send"), with messaging.system,
// messaging.destination.name, messaging.operation.name,
// messaging.message.id (one message) or messaging.batch.message_count
// (several), and error.type and an Error status when Publish fails. It
// ends when Publish returns, that is once the broker has taken the
// messages. Its context is the creation context of every message of the
// call: the propagator writes it into each Message.Metadata, which every
// adapter carries (traceparent and tracestate as plain headers on Kafka
// and RabbitMQ, top-level members of the JSON on Redis), so that other
// OpenTelemetry instrumentations read it too. The messages' Metadata maps
// are changed in place, so one Message must not be published by two
// goroutines at once.
//
// Handling: one span "process <topic>" of kind Consumer per handler
// attempt (messaging.operation.type "process"). Its parent is the
// creation context read from the message's Metadata — busline handles one
// message at a time, for which the messaging conventions allow the
// creation context as parent — and it also links to it, as the
// conventions recommend for process spans; a message without trace
// context gets a span under the handler's context. Attributes:
// messaging.system, messaging.destination.name, messaging.operation.name,
// messaging.message.id, messaging.consumer.group.name (with Group),
// busline.attempt (Delivery.Attempt), busline.redelivered,
// busline.outcome (ack, retry, dead_letter, abandon), error.type; and on
// Kafka messaging.destination.partition.id, messaging.kafka.offset and
// messaging.kafka.message.key. A failed attempt records the error and an
// Error status; the attempt after which the message is dead-lettered
// carries the event busline.dead_letter with busline.dead_letter.reason
// "permanent" or "retries_exhausted". A retried message thus shows as
// sibling process spans under one producer span, attempt 1, 2, ...
//
// messaging.system is System's value; without it, the consuming side
// derives it from Delivery.Native's type (rabbitmq, kafka, redis) and
// anything else, publishes included, says "busline".
//
// # Metrics
//
//   - messaging.client.sent.messages ({message}): messages Publish gave
//     the broker; those it did not take carry error.type (a
//     *bus.PublishError's Failed ones, or all of them).
//   - messaging.client.operation.duration (s): Publish calls.
//   - messaging.client.consumed.messages ({message}): messages delivered
//     to the handler, counted at their first attempt.
//   - messaging.process.duration (s): handler attempts, error.type when
//     they failed.
//   - busline.process.outcomes ({attempt}): handler attempts by
//     busline.outcome.
//   - busline.process.active ({message}): handler attempts running now.
//   - busline.consumer.redeliveries ({message}): deliveries the broker
//     flagged Redelivered.
//
// Metric attributes are messaging.system, messaging.destination.name,
// messaging.operation.name, messaging.consumer.group.name, error.type and
// busline.outcome: a bounded set (message IDs and Kafka positions are on
// spans only). error.type is the bus sentinel an error wraps ("closed",
// "unroutable", ...), "panic", "timeout", "canceled" or "_OTHER".
//
// # Delivery Semantics
//
// The handler middleware runs inside the retry pipeline, once per
// attempt, and predicts the pipeline's decision from the error it
// returns: nil is ack; a failure after the handler's context ended is
// abandon (the broker redelivers); bus.Permanent, or a failure the Retry
// policy does not retry, is dead_letter; anything else is retry. For this
// the middleware must be outermost (UseSubscriber, or first in Use) and
// Retry must match the subscription's policy. What it cannot see:
//
//   - the dead letter publish itself, which the pipeline makes after the
//     last attempt returns; when that publish fails, the message is
//     abandoned although the span says dead_letter. Poison messages
//     (malformed CloudEvents) are dead-lettered without a handler call and
//     leave no span.
//   - a retry wait cut short by shutdown: the last attempt says retry,
//     and no further span follows.
//   - acks and commits, which the adapters make after the handler.
//
// A dead letter is a copy of the message, its Metadata included, so it
// carries the original traceparent: a subscriber of the dead letter topic
// (where it is a topic) wired with otelbus continues the trace the message
// was published in.
//
// The middlewares do not see reconnects, Kafka consumer lag or health:
// Instrumentation.ObserveHealth exports them from the publisher or
// subscriber (busline.client.health, busline.client.reconnects,
// busline.client.events, busline.consumer.lag).
package otelbus
