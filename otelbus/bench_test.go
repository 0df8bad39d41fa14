package otelbus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/busline/bus"
	"github.com/busline/bus/mem"
	"github.com/busline/bus/otelbus"
)

// instrumentations are the set-ups each benchmark compares: no
// middleware at all ("none"); otelbus on OpenTelemetry's no-op providers
// ("off"); otelbus.New() on the global providers with no SDK installed
// ("global": what an application that wires otelbus and runs without
// OpenTelemetry pays); metrics on the SDK with the no-op tracer
// ("metrics"); both on the SDK, every span sampled and batched to an
// exporter that drops them, metrics aggregated by a reader ("sdk").
func instrumentations(b *testing.B) []struct {
	name string
	o    *otelbus.Instrumentation
} {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	prop := otelbus.Propagator(propagation.TraceContext{})
	return []struct {
		name string
		o    *otelbus.Instrumentation
	}{
		{"none", nil},
		{"off", otelbus.New(otelbus.TracerProvider(tracenoop.NewTracerProvider()),
			otelbus.MeterProvider(metricnoop.NewMeterProvider()), prop)},
		{"global", otelbus.New(prop)},
		{"metrics", otelbus.New(otelbus.TracerProvider(tracenoop.NewTracerProvider()),
			otelbus.MeterProvider(mp), prop)},
		{"sdk", otelbus.New(otelbus.TracerProvider(tp), otelbus.MeterProvider(mp), prop)},
	}
}

// BenchmarkMiddleware is the cost of the two middlewares alone, around a
// publish and a handler that do nothing: one op is one Publish of one
// message plus one handler call on it.
func BenchmarkMiddleware(b *testing.B) {
	for _, in := range instrumentations(b) {
		b.Run(in.name, func(b *testing.B) {
			publish := bus.PublishFunc(func(context.Context, string, ...*bus.Message) error { return nil })
			handle := bus.Handler(func(context.Context, *bus.Message) error { return nil })
			if in.o != nil {
				publish = in.o.PublishMiddleware()(publish)
				handle = in.o.Middleware()(handle)
			}
			ctx := context.Background()
			m := &bus.Message{ID: "id", Body: []byte("x"), Metadata: map[string]string{}}
			b.ReportAllocs()
			for b.Loop() {
				if err := publish(ctx, "bench", m); err != nil {
					b.Fatal(err)
				}
				m.Delivery = bus.Delivery{Topic: "bench", Attempt: 1}
				if err := handle(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemEndToEnd publishes one message per op on the in-process
// broker and waits, at the end, until the handler has taken them all.
func BenchmarkMemEndToEnd(b *testing.B) {
	for _, in := range instrumentations(b) {
		b.Run(in.name, func(b *testing.B) {
			broker := mem.NewBroker()
			var pub bus.Publisher = mem.NewPublisher(mem.Config{Broker: broker})
			var sub bus.Subscriber = mem.NewSubscriber(mem.Config{Broker: broker})
			b.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })
			if in.o != nil {
				pub = bus.UsePublisher(pub, in.o.PublishMiddleware())
				sub = bus.UseSubscriber(sub, in.o.Middleware())
			}
			var handled atomic.Int64
			subscribe(b, sub, "bench", func(context.Context, *bus.Message) error {
				handled.Add(1)
				return nil
			}, bus.Concurrency(4))
			ctx := context.Background()
			b.ReportAllocs()
			n := int64(0)
			for b.Loop() {
				if err := pub.Publish(ctx, "bench", bus.NewMessage("bench", []byte("x"))); err != nil {
					b.Fatal(err)
				}
				n++
			}
			for handled.Load() < n {
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// BenchmarkRedisPublish publishes one message to Redis through each
// set-up in turn (Publish returns once Redis replied), so that they all
// share every drift of machine load, in a rotating order; it reports each
// one's ns per publish as <set-up>-ns/msg.
func BenchmarkRedisPublish(b *testing.B) {
	ins := instrumentations(b)
	raw, _ := openAdapter(b, "redis://"+redisAddr)
	pubs := make([]bus.Publisher, len(ins))
	for i, in := range ins {
		pubs[i] = raw
		if in.o != nil {
			pubs[i] = bus.UsePublisher(raw, in.o.PublishMiddleware())
		}
	}
	topic := topicName(b)
	ctx := context.Background()
	total := make([]time.Duration, len(ins))
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		// Rotate which set-up goes first: the first publish after a
		// pause is slower.
		k++
		for j := range pubs {
			i := (j + k) % len(pubs)
			start := time.Now()
			if err := pubs[i].Publish(ctx, topic, bus.NewMessage("bench", []byte("x"))); err != nil {
				b.Fatal(err)
			}
			total[i] += time.Since(start)
		}
	}
	for i, in := range ins {
		b.ReportMetric(float64(total[i].Nanoseconds())/float64(b.N), in.name+"-ns/msg")
	}
}

// BenchmarkSDKSpanReference is one bare SDK span started and ended, for
// scale: the sdk variants above start two per message.
func BenchmarkSDKSpanReference(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tp.Tracer("reference")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, s := tr.Start(ctx, "reference")
		s.End()
	}
}
