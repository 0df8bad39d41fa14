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
	c := &consumer{o: o, cfg: cfg,
		dests: newDests("process", trace.SpanKindConsumer, semconv.MessagingOperationTypeProcess, cfg.group)}
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, m *bus.Message) error {
			return c.handle(ctx, m, next)
		}
	}
}

type consumer struct {
	o     *Instrumentation
	cfg   config
	dests *dests
	// retryAfter counts, per message, the failed attempts that asked for
	// a retry with bus.RetryAfter: they do not count against the retry
	// policy. Only such messages have an entry, removed when the message
	// is acked, dead-lettered or abandoned by its context (an entry whose
	// message was abandoned by a shutdown during its retry wait stays: at
	// most one per message in flight at shutdown).
	retryAfter sync.Map // *bus.Message → int
}

func (c *consumer) handle(ctx context.Context, m *bus.Message, next bus.Handler) error {
	tracing, metering := c.o.on.tracing(), c.o.on.metering()
	if !tracing && !metering {
		return next(c.o.passIn(ctx, m), m)
	}
	in := c.o.metrics
	d := c.dests.get(c.cfg.consumeSystem(m), m.Delivery.Topic)

	hctx := ctx
	var span trace.Span            // nil while tracing is off
	var attrs []attribute.KeyValue // the span's, set once at its end
	if tracing {
		pctx := c.cfg.prop.Extract(ctx, metadataCarrier{m})
		opts := d.start
		if sc := trace.SpanContextFromContext(pctx); sc.IsValid() && sc.IsRemote() {
			opts = append(opts[:len(opts):len(opts)], trace.WithLinks(trace.Link{SpanContext: sc}))
		}
		hctx, span = c.o.tracer.Start(pctx, d.spanName, opts...)
		if span.IsRecording() {
			attrs = make([]attribute.KeyValue, 0, 10)
			attrs = append(attrs,
				semconv.MessagingMessageID(m.ID),
				AttemptKey.Int(m.Delivery.Attempt),
				RedeliveredKey.Bool(m.Delivery.Redelivered))
			attrs = kafkaAttributes(m.Delivery.Native, attrs)
			if c.cfg.attributes != nil {
				attrs = append(attrs, c.cfg.attributes(m)...)
			}
		}
	} else {
		hctx = c.o.passIn(ctx, m)
	}

	var start time.Time // read only when the duration is recorded
	if metering {
		if m.Delivery.Attempt <= 1 {
			in.consumed.Add(ctx, 1, d.opts.add...)
			if m.Delivery.Redelivered {
				in.redeliveries.Add(ctx, 1, d.opts.add...)
			}
		}
		in.active.Add(ctx, 1, d.opts.add...)
		if in.procDuration.Enabled(ctx) {
			start = time.Now()
		}
	}
	returned := false
	defer func() {
		if !returned {
			// next panicked: record it and let the panic go on to the
			// pipeline, which makes a *bus.PanicError of it with the
			// stack of the panic.
			c.finish(ctx, m, d, metering, span, attrs, start, errPanicked)
		}
	}()
	err := next(hctx, m)
	returned = true
	c.finish(ctx, m, d, metering, span, attrs, start, err)
	return err
}

// errPanicked stands for the error of an attempt that panicked.
var errPanicked = &bus.PanicError{Value: "handler panicked"}

// finish records the end of an attempt that returned err: its metrics
// when metering, its span unless span is nil. attrs are the span's
// attributes gathered at its start.
func (c *consumer) finish(ctx context.Context, m *bus.Message, d *dest, metering bool, span trace.Span, attrs []attribute.KeyValue, start time.Time, err error) {
	outcome, reason := c.outcome(ctx, m, err)
	errType := ""
	if err != nil {
		errType = errorType(err)
	}
	if metering {
		in := c.o.metrics
		var dur time.Duration
		if !start.IsZero() {
			dur = time.Since(start)
		}
		in.active.Add(ctx, -1, d.opts.add...)
		if err != nil {
			in.procDuration.Record(ctx, dur.Seconds(), d.withError(errType).rec...)
		} else {
			in.procDuration.Record(ctx, dur.Seconds(), d.opts.rec...)
		}
		in.outcomes.Add(ctx, 1, d.outcomeOpts(outcome).add...)
	}
	if span == nil {
		return
	}
	if span.IsRecording() {
		attrs = append(attrs, OutcomeKey.String(outcome))
		if err != nil {
			attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
		}
		span.SetAttributes(attrs...)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		if outcome == OutcomeDeadLetter {
			span.AddEvent(DeadLetterEvent, trace.WithAttributes(DeadLetterReasonKey.String(reason)))
		}
	}
	span.End()
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
