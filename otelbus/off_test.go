package otelbus_test

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/busline/bus"
	"github.com/busline/bus/otelbus"
)

// wrapped returns a publish and a handler that do nothing, wrapped in o's
// middlewares (bare when o is nil).
func wrapped(o *otelbus.Instrumentation) (bus.PublishFunc, bus.Handler) {
	publish := bus.PublishFunc(func(context.Context, string, ...*bus.Message) error { return nil })
	handle := bus.Handler(func(context.Context, *bus.Message) error { return nil })
	if o != nil {
		publish = o.PublishMiddleware()(publish)
		handle = o.Middleware()(handle)
	}
	return publish, handle
}

// allocsPerMessage is the allocations of one publish and one handler call
// through publish and handle.
func allocsPerMessage(publish bus.PublishFunc, handle bus.Handler) float64 {
	ctx := context.Background()
	m := &bus.Message{ID: "id", Body: []byte("x"), Metadata: map[string]string{}}
	msgs := []*bus.Message{m}
	return testing.AllocsPerRun(1000, func() {
		_ = publish(ctx, "t", msgs...)
		m.Delivery = bus.Delivery{Topic: "t", Attempt: 1}
		_ = handle(ctx, m)
	})
}

// TestNoopProvidersCostNothing: on OpenTelemetry's no-op providers the
// middlewares allocate nothing beyond what the bare calls do, and add no
// headers to a message published without a trace.
func TestNoopProvidersCostNothing(t *testing.T) {
	bare := allocsPerMessage(wrapped(nil))
	for name, o := range map[string]*otelbus.Instrumentation{
		"trace/noop": otelbus.New(otelbus.TracerProvider(tracenoop.NewTracerProvider()),
			otelbus.MeterProvider(metricnoop.NewMeterProvider()), otelbus.Propagator(propagation.TraceContext{})),
		//lint:ignore SA1019 the deprecated no-op provider is still in use and must count as off
		"trace.NewNoopTracerProvider": otelbus.New(otelbus.TracerProvider(trace.NewNoopTracerProvider()),
			otelbus.MeterProvider(metricnoop.NewMeterProvider()), otelbus.Propagator(propagation.TraceContext{})),
	} {
		if got := allocsPerMessage(wrapped(o)); got != bare {
			t.Errorf("%s: %v allocations per message, bare calls %v", name, got, bare)
		}
		publish, _ := wrapped(o)
		m := &bus.Message{ID: "id", Metadata: map[string]string{}}
		if err := publish(context.Background(), "t", m); err != nil {
			t.Fatal(err)
		}
		if len(m.Metadata) != 0 {
			t.Errorf("%s: publish without a trace wrote %v", name, m.Metadata)
		}
	}
}

// TestTracingOffPassesContextOn: with tracing off (no-op providers), a
// trace context that arrived from elsewhere still goes on — into the
// published messages, and from a received message into the handler's
// context — as OpenTelemetry's no-op tracer does, and metrics are still
// recorded when only the tracer is off.
func TestTracingOffPassesContextOn(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	o := otelbus.New(otelbus.TracerProvider(tracenoop.NewTracerProvider()),
		otelbus.MeterProvider(mp), otelbus.Propagator(propagation.TraceContext{}))

	// An upstream trace, as an instrumented HTTP server would have put it
	// in the request's context.
	upstream := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = upstream.Shutdown(context.Background()) })
	ctx, span := upstream.Tracer("upstream").Start(context.Background(), "request")
	defer span.End()

	var got trace.SpanContext
	publish := o.PublishMiddleware()(func(context.Context, string, ...*bus.Message) error { return nil })
	handle := o.Middleware()(func(ctx context.Context, _ *bus.Message) error {
		got = trace.SpanContextFromContext(ctx)
		return nil
	})
	m := &bus.Message{ID: "id"}
	if err := publish(ctx, "t", m); err != nil {
		t.Fatal(err)
	}
	if m.Metadata["traceparent"] == "" {
		t.Fatalf("publish with tracing off dropped the upstream trace: Metadata %v", m.Metadata)
	}
	m.Delivery = bus.Delivery{Topic: "t", Attempt: 1}
	if err := handle(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("handler context %v, want the upstream span %v", got, span.SpanContext())
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if n := sumOf(t, rm, otelbus.MetricSent); n != 1 {
		t.Errorf("%s = %d with tracing off, want 1", otelbus.MetricSent, n)
	}
	if n := sumOf(t, rm, otelbus.MetricConsumed); n != 1 {
		t.Errorf("%s = %d with tracing off, want 1", otelbus.MetricConsumed, n)
	}
}

// sumOf is the sum over all data points of the Int64 sum named name.
func sumOf(t *testing.T, rm metricdata.ResourceMetrics, name string) int64 {
	t.Helper()
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			s, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T", name, m.Data)
			}
			for _, dp := range s.DataPoints {
				n += dp.Value
			}
		}
	}
	return n
}

// TestGlobalProvidersOffUntilSet: otelbus.New() on OpenTelemetry's
// global providers costs nothing while the application has installed no
// SDK, and records once it does, without a new Instrumentation. It runs
// in a child process: the globals can be set once per process.
func TestGlobalProvidersOffUntilSet(t *testing.T) {
	if os.Getenv("OTELBUS_GLOBAL_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGlobalProvidersOffUntilSet$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "OTELBUS_GLOBAL_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}

	o := otelbus.New(otelbus.Propagator(propagation.TraceContext{}))
	if got, bare := allocsPerMessage(wrapped(o)), allocsPerMessage(wrapped(nil)); got != bare {
		t.Errorf("global providers without an SDK: %v allocations per message, bare calls %v", got, bare)
	}

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	}()
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)

	publish, handle := wrapped(o)
	m := &bus.Message{ID: "id"}
	if err := publish(context.Background(), "t", m); err != nil {
		t.Fatal(err)
	}
	m.Delivery = bus.Delivery{Topic: "t", Attempt: 1}
	if err := handle(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != "send t" || spans[1].Name != "process t" {
		t.Fatalf("spans after the SDK was installed: %v, want send t and process t", spans)
	}
	if spans[0].SpanContext.TraceID() != spans[1].SpanContext.TraceID() {
		t.Errorf("send and process spans in different traces")
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if n := sumOf(t, rm, otelbus.MetricConsumed); n != 1 {
		t.Errorf("%s = %d after the SDK was installed, want 1", otelbus.MetricConsumed, n)
	}
}
