package otelbus

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/busline/bus"
)

// PublishMiddleware returns the publish middleware: one producer span
// "send <topic>" per Publish call, ended when Publish returns (the broker
// took the messages, or did not), whose context is written into each
// message's Metadata (traceparent, tracestate with the W3C propagator);
// and the messaging.client.sent.messages and
// messaging.client.operation.duration metrics. Install it with
// bus.UsePublisher(pub, o.PublishMiddleware()).
func (o *Instrumentation) PublishMiddleware() bus.PublishMiddleware {
	system := o.cfg.publishSystem()
	ds := newDests("send", trace.SpanKindProducer, semconv.MessagingOperationTypeSend, "")
	return func(next bus.PublishFunc) bus.PublishFunc {
		return func(ctx context.Context, topic string, msgs ...*bus.Message) error {
			tracing, metering := o.on.tracing(), o.on.metering()
			if !tracing && !metering {
				o.passOut(ctx, msgs)
				return next(ctx, topic, msgs...)
			}
			var start time.Time // read only when the duration is recorded
			if metering && o.metrics.opDuration.Enabled(ctx) {
				start = time.Now()
			}
			d := ds.get(system, topic)
			var span trace.Span
			if tracing {
				opts := d.start
				if len(msgs) != 1 {
					opts = append(opts[:len(opts):len(opts)],
						trace.WithAttributes(semconv.MessagingBatchMessageCount(len(msgs))))
				}
				ctx, span = o.tracer.Start(ctx, d.spanName, opts...)
				if span.SpanContext().IsValid() {
					for _, m := range msgs {
						if m != nil {
							o.cfg.prop.Inject(ctx, metadataCarrier{m})
						}
					}
				}
			} else {
				o.passOut(ctx, msgs)
			}
			err := next(ctx, topic, msgs...)
			if metering {
				var dur time.Duration
				if !start.IsZero() {
					dur = time.Since(start)
				}
				o.publishMetrics(ctx, d, msgs, err, dur)
			}
			if span == nil {
				return err
			}
			if span.IsRecording() {
				if len(msgs) == 1 && msgs[0] != nil && msgs[0].ID != "" {
					span.SetAttributes(semconv.MessagingMessageID(msgs[0].ID))
				}
				if err != nil {
					span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
					span.RecordError(err)
					span.SetStatus(codes.Error, err.Error())
				}
			}
			span.End()
			return err
		}
	}
}

// publishMetrics counts the messages of one Publish: those a
// *bus.PublishError lists as failed (all of them for another error) with
// error.type, the others without.
func (o *Instrumentation) publishMetrics(ctx context.Context, d *dest, msgs []*bus.Message, err error, dur time.Duration) {
	in := o.metrics
	ok := int64(len(msgs))
	if err != nil {
		failed := ok
		var pe *bus.PublishError
		if errors.As(err, &pe) {
			failed = int64(len(pe.Failed))
		}
		ok -= failed
		eo := d.withError(errorType(err))
		in.sent.Add(ctx, failed, eo.add...)
		in.opDuration.Record(ctx, dur.Seconds(), eo.rec...)
	} else {
		in.opDuration.Record(ctx, dur.Seconds(), d.opts.rec...)
	}
	if ok > 0 {
		in.sent.Add(ctx, ok, d.opts.add...)
	}
}
