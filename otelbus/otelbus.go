package otelbus

import (
	"context"
	"errors"
	"reflect"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/busline/bus"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/busline/bus/otelbus"

// Option configures an Instrumentation (New) or one subscription's
// handler middleware (Instrumentation.Middleware).
type Option func(*config)

type config struct {
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	prop       propagation.TextMapPropagator
	system     string
	group      string
	retry      *bus.RetryPolicy
	attributes func(*bus.Message) []attribute.KeyValue
}

// TracerProvider sets where spans go. Default: otel.GetTracerProvider().
func TracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// MeterProvider sets where metrics go. Default: otel.GetMeterProvider().
func MeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// Propagator sets how trace context is written into and read from
// Message.Metadata. Default: otel.GetTextMapPropagator(), which is a no-op
// until the application sets one: set it to include
// propagation.TraceContext{} (the W3C traceparent/tracestate headers), or
// traces stop at the broker.
func Propagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

// System sets the messaging.system attribute: "rabbitmq", "kafka",
// "redis", ... Default: on the consuming side, derived from the type of
// Delivery.Native (rabbitmq, kafka, redis); otherwise "busline".
func System(name string) Option {
	return func(c *config) { c.system = name }
}

// Group sets messaging.consumer.group.name on process spans and metrics.
// The handler middleware cannot see the subscription's bus.Group, so give
// it here, on New or per subscription:
// bus.Use(o.Middleware(otelbus.Group("billing"))). Default: none.
func Group(name string) Option {
	return func(c *config) { c.group = name }
}

// Retry tells the handler middleware the subscription's retry policy, so
// that it can say which failed attempt is the last one (dead-lettered)
// and which is retried. Give the policy given to the subscription.
// Default: the policy a subscription gets when it names none.
func Retry(p bus.RetryPolicy) Option {
	return func(c *config) { c.retry = &p }
}

// Attributes adds f's attributes to every process span (and only spans:
// metrics keep a bounded set of attributes). f runs once per attempt.
func Attributes(f func(*bus.Message) []attribute.KeyValue) Option {
	return func(c *config) { c.attributes = f }
}

// Instrumentation records traces and metrics of publishes and handler
// calls. Make one with New; it is safe for concurrent use.
type Instrumentation struct {
	cfg     config
	tracer  trace.Tracer
	metrics *instruments
	on      switches
}

// New returns an Instrumentation configured by opts.
func New(opts ...Option) *Instrumentation {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.prop == nil {
		c.prop = otel.GetTextMapPropagator()
	}
	if c.retry == nil {
		// The policy a subscription gets when it names none.
		p := bus.DefaultRetry()
		c.retry = &p
	}
	return &Instrumentation{
		cfg:     c,
		tracer:  c.tp.Tracer(ScopeName),
		metrics: newInstruments(c.mp.Meter(ScopeName)),
		on:      newSwitches(c.tp, c.mp),
	}
}

// metadataCarrier adapts Message.Metadata to propagation.TextMapCarrier.
type metadataCarrier struct{ m *bus.Message }

func (c metadataCarrier) Get(key string) string { return c.m.Metadata[key] }

func (c metadataCarrier) Set(key, value string) {
	if c.m.Metadata == nil {
		c.m.Metadata = make(map[string]string, 2)
	}
	c.m.Metadata[key] = value
}

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c.m.Metadata))
	for k := range c.m.Metadata {
		keys = append(keys, k)
	}
	return keys
}

// publishSystem is the messaging.system of publishes.
func (c *config) publishSystem() string {
	if c.system != "" {
		return c.system
	}
	return "busline"
}

// consumeSystem is the messaging.system of a received message.
func (c *config) consumeSystem(m *bus.Message) string {
	if c.system != "" {
		return c.system
	}
	if m.Delivery.Native != nil {
		t := reflect.TypeOf(m.Delivery.Native)
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.PkgPath() {
		case "github.com/rabbitmq/amqp091-go":
			return "rabbitmq"
		case "github.com/segmentio/kafka-go":
			return "kafka"
		case "github.com/redis/go-redis/v9":
			return "redis"
		}
	}
	return "busline"
}

// kafkaAttributes returns the partition, offset and key of a kafka-go
// Message (Delivery.Native of the kafka adapter), read by field name so
// that otelbus does not import the Kafka client.
func kafkaAttributes(native any, attrs []attribute.KeyValue) []attribute.KeyValue {
	v := reflect.ValueOf(native)
	if v.Kind() != reflect.Struct || v.Type().PkgPath() != "github.com/segmentio/kafka-go" || v.Type().Name() != "Message" {
		return attrs
	}
	if f := v.FieldByName("Partition"); f.IsValid() && f.CanInt() {
		attrs = append(attrs, semconv.MessagingDestinationPartitionID(strconv.FormatInt(f.Int(), 10)))
	}
	if f := v.FieldByName("Offset"); f.IsValid() && f.CanInt() {
		attrs = append(attrs, semconv.MessagingKafkaOffset(int(f.Int())))
	}
	if f := v.FieldByName("Key"); f.IsValid() && f.Kind() == reflect.Slice && f.Len() > 0 {
		if b, ok := f.Interface().([]byte); ok {
			attrs = append(attrs, semconv.MessagingKafkaMessageKey(string(b)))
		}
	}
	return attrs
}

// errorType is a low-cardinality name for err: the bus sentinel it wraps,
// "panic", "timeout", "canceled", or "_OTHER".
func errorType(err error) string {
	var pe *bus.PanicError
	switch {
	case errors.As(err, &pe):
		return "panic"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, bus.ErrClosed):
		return "closed"
	case errors.Is(err, bus.ErrInvalid):
		return "invalid"
	case errors.Is(err, bus.ErrTooLarge):
		return "too_large"
	case errors.Is(err, bus.ErrMalformed):
		return "malformed"
	case errors.Is(err, bus.ErrNotFound):
		return "not_found"
	case errors.Is(err, bus.ErrUnroutable):
		return "unroutable"
	case errors.Is(err, bus.ErrPermission):
		return "permission"
	case errors.Is(err, bus.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, bus.ErrUnsupported):
		return "unsupported"
	}
	return "_OTHER"
}
