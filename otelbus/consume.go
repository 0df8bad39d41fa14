package otelbus

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/busline/bus"
)

// DeadLetterEvent is the name of the span event recorded on the attempt
// after which the message goes to the dead letter topic.
const DeadLetterEvent = "busline.dead_letter"

// DeadLetterReasonKey says why a message is dead-lettered: "permanent"
// (the handler returned a bus.Permanent error) or "retries_exhausted".
const DeadLetterReasonKey = attribute.Key("busline.dead_letter.reason")

// Middleware returns the handler middleware: one consumer span
// "process <topic>" per handler attempt, a child of the producer's span
// whose context the message's Metadata carries (and linked to it), with
// the attempt number and outcome; and the consumer metrics. opts
// override New's Group, System, Retry and Attributes for the
// subscriptions it is given to (the providers and propagator are New's).
// Install it outermost, so that it sees what the pipeline sees:
// bus.UseSubscriber(sub, o.Middleware()) or, with per-subscription
// options, first in bus.Use.
func (o *Instrumentation) Middleware(opts ...Option) bus.Middleware {
	cfg := o.cfg
	for _, op := range opts {
		op(&cfg)
	}
	cfg.tp, cfg.mp, cfg.prop = o.cfg.tp, o.cfg.mp, o.cfg.prop
	c := &consumer{o: o, cfg: cfg}
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, m *bus.Message) error {
			return c.handle(ctx, m, next)
		}
	}
}

type consumer struct {
	o   *Instrumentation
	cfg config
	// retryAfter counts, per message, the failed attempts that asked for
	// a retry with bus.RetryAfter: they do not count against the retry
	// policy. Only such messages have an entry, removed when the message
	// is acked, dead-lettered or abandoned by its context.
	retryAfter sync.Map // *bus.Message → int
}

func (c *consumer) handle(ctx context.Context, m *bus.Message, next bus.Handler) (err error) {
	in := c.o.metrics
	system := c.cfg.consumeSystem(m)
	topic := m.Delivery.Topic
	attempt := m.Delivery.Attempt
	k := setKey{op: "process", system: system, topic: topic, group: c.cfg.group}

	pctx := c.cfg.prop.Extract(ctx, metadataCarrier{m})
	startOpts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String(system),
			semconv.MessagingDestinationName(topic),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
		),
	}
	if sc := trace.SpanContextFromContext(pctx); sc.IsValid() && sc.IsRemote() {
		startOpts = append(startOpts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	hctx, span := c.o.tracer.Start(pctx, "process "+topic, startOpts...)
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 8)
		attrs = append(attrs,
			semconv.MessagingMessageID(m.ID),
			AttemptKey.Int(attempt),
			RedeliveredKey.Bool(m.Delivery.Redelivered))
		if c.cfg.group != "" {
			attrs = append(attrs, semconv.MessagingConsumerGroupName(c.cfg.group))
		}
		attrs = kafkaAttributes(m.Delivery.Native, attrs)
		if c.cfg.attributes != nil {
			attrs = append(attrs, c.cfg.attributes(m)...)
		}
		span.SetAttributes(attrs...)
	}

	if attempt <= 1 {
		in.consumed.Add(ctx, 1, in.set(k))
		if m.Delivery.Redelivered {
			in.redeliveries.Add(ctx, 1, in.set(k))
		}
	}
	in.active.Add(ctx, 1, in.set(k))
	start := time.Now()
	defer func() {
		v := recover()
		ferr := err
		if v != nil {
			ferr = &bus.PanicError{Value: v}
		}
		d := time.Since(start)
		in.active.Add(ctx, -1, in.set(k))
		outcome, reason := c.outcome(ctx, m, ferr)
		ek := k
		if ferr != nil {
			ek.errType = errorType(ferr)
		}
		in.procDuration.Record(ctx, d.Seconds(), in.set(ek))
		ok := ek
		ok.outcome = outcome
		in.outcomes.Add(ctx, 1, in.set(ok))
		if span.IsRecording() {
			span.SetAttributes(OutcomeKey.String(outcome))
			if ferr != nil {
				span.SetAttributes(semconv.ErrorTypeKey.String(ek.errType))
				span.RecordError(ferr)
				span.SetStatus(codes.Error, ferr.Error())
			}
			if outcome == OutcomeDeadLetter {
				span.AddEvent(DeadLetterEvent, trace.WithAttributes(DeadLetterReasonKey.String(reason)))
			}
		}
		span.End()
		if v != nil {
			panic(v)
		}
	}()
	return next(hctx, m)
}

// outcome says what the pipeline does after an attempt that returned err,
// by the rules of internal/pipeline: nil acks; a failure once ctx ended
// is abandoned; a Permanent error, or a failure the retry policy does not
// retry, is dead-lettered; anything else is retried. The dead letter
// publish itself happens after the middleware returns and is not seen
// here.
func (c *consumer) outcome(ctx context.Context, m *bus.Message, err error) (outcome, reason string) {
	if err == nil {
		c.forget(m)
		return OutcomeAck, ""
	}
	if ctx.Err() != nil {
		c.forget(m)
		return OutcomeAbandon, ""
	}
	asked := 0
	if v, ok := c.retryAfter.Load(m); ok {
		asked = v.(int)
	}
	_, later := bus.RetryDelay(err)
	if later {
		asked++
	}
	failures := m.Delivery.Attempt - asked
	switch {
	case bus.IsPermanent(err):
		c.forget(m)
		return OutcomeDeadLetter, "permanent"
	case !later && !c.cfg.retry.ShouldRetry(failures):
		c.forget(m)
		return OutcomeDeadLetter, "retries_exhausted"
	}
	if later {
		c.retryAfter.Store(m, asked)
	}
	return OutcomeRetry, ""
}

func (c *consumer) forget(m *bus.Message) {
	c.retryAfter.Delete(m)
}
