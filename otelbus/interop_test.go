package otelbus_test

import (
	"context"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/busline/bus"
)

// rawProducerSpan starts a producer span on h's SDK provider, as a plain
// OpenTelemetry producer would, and returns the headers its propagator
// writes (traceparent) and the span context.
func rawProducerSpan(h *harness) (propagation.MapCarrier, trace.SpanContext) {
	ctx, span := h.tp.Tracer("plain-producer").Start(context.Background(), "send raw",
		trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier, span.SpanContext()
}

// checkContinued checks that the one process span on topic continues the
// plain producer's trace.
func checkContinued(t *testing.T, h *harness, topic string, producer trace.SpanContext) {
	t.Helper()
	p := h.waitSpans(t, "process "+topic, 1)[0]
	if p.SpanContext.TraceID() != producer.TraceID() {
		t.Errorf("process trace id %v, producer's %v", p.SpanContext.TraceID(), producer.TraceID())
	}
	if p.Parent.SpanID() != producer.SpanID() {
		t.Errorf("process parent %v, want the producer's span %v", p.Parent.SpanID(), producer.SpanID())
	}
	if len(p.Links) != 1 || p.Links[0].SpanContext.SpanID() != producer.SpanID() {
		t.Errorf("process links %v, want one to the producer's span", p.Links)
	}
}

// A Kafka record written with kafka-go and a traceparent header of its
// own producer's making (no busline on the producing side) is handled in
// that trace.
func TestPlainKafkaProducerContinued(t *testing.T) {
	h := newHarness(t)
	cfg := kafkaConfig(t)
	_, sub := newKafka(t, cfg)
	topic := kafkaTopic(t, cfg)
	subscribe(t, bus.UseSubscriber(sub, h.o.Middleware()), topic,
		func(context.Context, *bus.Message) error { return nil })

	carrier, producer := rawProducerSpan(h)
	var headers []kafkago.Header
	for k, v := range carrier {
		headers = append(headers, kafkago.Header{Key: k, Value: []byte(v)})
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(cfg.Brokers...), Topic: topic, BatchTimeout: time.Millisecond,
		RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, kafkago.Message{Key: []byte("k1"), Value: []byte("plain"), Headers: headers}); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	checkContinued(t, h, topic, producer)
	p := h.spans("process " + topic)[0]
	if got := attr(p, "messaging.kafka.message.key").AsString(); got != "k1" {
		t.Errorf("messaging.kafka.message.key %q, want k1", got)
	}
}

// The same with a RabbitMQ message published with amqp091 to the
// topic's exchange, the traceparent in its headers.
func TestPlainAMQPProducerContinued(t *testing.T) {
	h := newHarness(t)
	_, sub := openAdapter(t, amqpURL)
	topic := amqpTopic(t)
	subscribe(t, bus.UseSubscriber(sub, h.o.Middleware()), topic,
		func(context.Context, *bus.Message) error { return nil })

	carrier, producer := rawProducerSpan(h)
	headers := amqp091.Table{}
	for k, v := range carrier {
		headers[k] = v
	}
	c, err := amqp091.Dial(amqpURL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ch.PublishWithContext(ctx, topic, "", false, false, amqp091.Publishing{
		Headers: headers, Body: []byte("plain"), DeliveryMode: amqp091.Persistent,
	}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	checkContinued(t, h, topic, producer)
}
