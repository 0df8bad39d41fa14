package otelbus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/busline/bus"
	"github.com/busline/bus/mem"
	"github.com/busline/bus/otelbus"
)

// ObserveHealth reports a subscriber's state and reconnect count at each
// collection: live while open, closed after Close; nothing once stopped.
func TestObserveHealth(t *testing.T) {
	h := newHarness(t)
	sub := mem.NewSubscriber(mem.Config{Broker: mem.NewBroker()})
	name := attribute.String("busline.client", "orders")
	stop, err := h.o.ObserveHealth(sub, name)
	if err != nil {
		t.Fatal(err)
	}
	state := func(m metricdata.Metrics) string {
		g, ok := m.Data.(metricdata.Gauge[int64])
		if !ok {
			t.Fatalf("%s is a %T", m.Name, m.Data)
		}
		on := ""
		for _, p := range g.DataPoints {
			if c, _ := p.Attributes.Value("busline.client"); c != name.Value {
				t.Fatalf("point without the client attribute: %v", p.Attributes)
			}
			if p.Value == 1 {
				v, _ := p.Attributes.Value(otelbus.HealthStateKey)
				on += v.AsString()
			}
		}
		return on
	}
	ms := h.collect(t)
	if got := state(ms[otelbus.MetricHealth]); got != "live" {
		t.Fatalf("state %q while open", got)
	}
	if n := sum(t, ms[otelbus.MetricReconnects], name); n != 0 {
		t.Fatalf("%d reconnects", n)
	}
	_ = sub.Close()
	if got := state(h.collect(t)[otelbus.MetricHealth]); got != "closed" {
		t.Fatalf("state %q after Close", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if m, ok := h.collect(t)[otelbus.MetricHealth]; ok && len(m.Data.(metricdata.Gauge[int64]).DataPoints) > 0 {
		t.Fatal("health still observed after stop")
	}
}

// A subscriber with counters of its own (redispubsub's Stats) has them
// exported as busline.client.events.
func TestObserveHealthExportsCounts(t *testing.T) {
	h := newHarness(t)
	pub, sub := openAdapter(t, "redis://"+redisAddr)
	hr, ok := sub.(bus.HealthReporter)
	if !ok {
		t.Fatalf("%T reports no health", sub)
	}
	stop, err := h.o.ObserveHealth(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	topic := redisTopic(t)
	var handled atomic.Int32
	running, err := bus.Start(context.Background(), sub, topic, func(context.Context, *bus.Message) error {
		handled.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer running.Stop()
	if err := pub.Publish(context.Background(), topic, &bus.Message{}, &bus.Message{}, &bus.Message{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for sum(t, h.collect(t)[otelbus.MetricEvents], otelbus.EventKey.String("handled")) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("busline.client.events{handled} never reached 3 (handled %d)", handled.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A kafka subscriber's lag per partition is exported as
// busline.consumer.lag: the whole backlog while its handler holds the
// first message, nothing once all are handled.
func TestObserveHealthExportsLag(t *testing.T) {
	h := newHarness(t)
	cfg := kafkaConfig(t)
	cfg.MaxUncommitted = 5
	topic := kafkaTopic(t, cfg)
	pub, sub := newKafka(t, cfg)
	msgs := make([]*bus.Message, 20)
	for i := range msgs {
		msgs[i] = &bus.Message{Key: "one-key", Body: []byte("x")}
	}
	if err := pub.Publish(context.Background(), topic, msgs...); err != nil {
		t.Fatal(err)
	}
	stop, err := h.o.ObserveHealth(sub)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	release := make(chan struct{})
	running, err := bus.Start(context.Background(), sub, topic, func(ctx context.Context, _ *bus.Message) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, bus.Group("lag"))
	if err != nil {
		t.Fatal(err)
	}
	defer running.Stop()
	lag := func() int64 {
		m := h.collect(t)[otelbus.MetricLag]
		g, ok := m.Data.(metricdata.Gauge[int64])
		if !ok {
			return -1
		}
		var total int64
		for _, p := range g.DataPoints {
			if d, _ := p.Attributes.Value("messaging.destination.name"); d.AsString() == topic {
				total += p.Value
			}
		}
		return total
	}
	waitLag := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for lag() != want {
			if time.Now().After(deadline) {
				t.Fatalf("busline.consumer.lag %d, want %d", lag(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLag(20)
	close(release)
	waitLag(0)
}
