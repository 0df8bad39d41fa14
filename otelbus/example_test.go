package otelbus_test

import (
	"context"
	"fmt"
	"slices"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/busline/bus"
	"github.com/busline/bus/mem"
	"github.com/busline/bus/otelbus"
)

// Wiring otelbus on a publisher and a subscriber: the handler's span
// continues the publisher's trace.
func Example() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	// In an application: otel.SetTracerProvider, otel.SetMeterProvider and
	// otel.SetTextMapPropagator once, and otelbus.New() with no options.
	o := otelbus.New(otelbus.TracerProvider(tp), otelbus.Propagator(propagation.TraceContext{}))

	ctx := context.Background()
	b := mem.NewBroker()
	pub := bus.UsePublisher(mem.NewPublisher(mem.Config{Broker: b}), o.PublishMiddleware())
	sub := bus.UseSubscriber(mem.NewSubscriber(mem.Config{Broker: b}), o.Middleware())
	defer sub.Close()
	defer pub.Close()

	handled := make(chan struct{})
	running, err := bus.Start(ctx, sub, "orders", func(ctx context.Context, m *bus.Message) error {
		close(handled)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := pub.Publish(ctx, "orders", bus.NewMessage("order.created", []byte(`{"order":42}`))); err != nil {
		fmt.Println(err)
		return
	}
	<-handled
	_ = running.Stop()

	var lines []string
	ended := spans.GetSpans()
	for _, s := range ended {
		lines = append(lines, fmt.Sprintf("%s (%s), same trace: %v", s.Name, s.SpanKind,
			s.SpanContext.TraceID() == ended[0].SpanContext.TraceID()))
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// process orders (consumer), same trace: true
	// send orders (producer), same trace: true
}
