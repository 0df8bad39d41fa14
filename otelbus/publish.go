package otelbus

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
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
	return func(next bus.PublishFunc) bus.PublishFunc {
		return func(ctx context.Context, topic string, msgs ...*bus.Message) error {
			start := time.Now()
			attrs := []attribute.KeyValue{
				semconv.MessagingSystemKey.String(system),
				semconv.MessagingDestinationName(topic),
				semconv.MessagingOperationTypeSend,
				semconv.MessagingOperationName("send"),
			}
			if len(msgs) != 1 {
				attrs = append(attrs, semconv.MessagingBatchMessageCount(len(msgs)))
			}
			ctx, span := o.tracer.Start(ctx, "send "+topic,
				trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
			for _, m := range msgs {
				if m != nil {
					o.cfg.prop.Inject(ctx, metadataCarrier{m})
				}
			}
			err := next(ctx, topic, msgs...)
			o.publishMetrics(ctx, system, topic, msgs, err, time.Since(start))
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
func (o *Instrumentation) publishMetrics(ctx context.Context, system, topic string, msgs []*bus.Message, err error, d time.Duration) {
	in := o.metrics
	k := setKey{op: "send", system: system, topic: topic}
	ok := int64(len(msgs))
	if err != nil {
		failed := ok
		var pe *bus.PublishError
		if errors.As(err, &pe) {
			failed = int64(len(pe.Failed))
		}
		ok -= failed
		ek := k
		ek.errType = errorType(err)
		in.sent.Add(ctx, failed, in.set(ek))
		in.opDuration.Record(ctx, d.Seconds(), in.set(ek))
	} else {
		in.opDuration.Record(ctx, d.Seconds(), in.set(k))
	}
	if ok > 0 {
		in.sent.Add(ctx, ok, in.set(k))
	}
}
