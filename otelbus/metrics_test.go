package otelbus_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/busline/bus"
	"github.com/busline/bus/mem"
	"github.com/busline/bus/otelbus"
)

// collect returns the metrics h's reader holds, by name.
func (h *harness) collect(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sum adds the int64 sum's points whose attributes include all of want.
func sum(t testing.TB, m metricdata.Metrics, want ...attribute.KeyValue) int64 {
	t.Helper()
	if m.Data == nil {
		return 0 // nothing recorded yet
	}
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, not an int64 sum", m.Name, m.Data)
	}
	var n int64
points:
	for _, p := range s.DataPoints {
		for _, kv := range want {
			if v, ok := p.Attributes.Value(kv.Key); !ok || v != kv.Value {
				continue points
			}
		}
		n += p.Value
	}
	return n
}

// After a known run — 5 published, 5 handled, one of them failing twice
// before it succeeds, one failing permanently, one Publish on a closed
// publisher — the metrics hold exactly those counts.
func TestMetrics(t *testing.T) {
	h := newHarness(t, otelbus.Group("billing"))
	b := mem.NewBroker()
	rawPub := mem.NewPublisher(mem.Config{Broker: b})
	pub := bus.UsePublisher(rawPub, h.o.PublishMiddleware())
	sub := bus.UseSubscriber(mem.NewSubscriber(mem.Config{Broker: b}), h.o.Middleware())
	topic := topicName(t)

	var mu sync.Mutex
	calls := map[string]int{}
	subscribe(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
		mu.Lock()
		calls[m.Key]++
		n := calls[m.Key]
		mu.Unlock()
		switch {
		case m.Key == "flaky" && n <= 2:
			return errors.New("flaky downstream")
		case m.Key == "poison":
			return bus.Permanent(errors.New("cannot be handled"))
		}
		return nil
	}, bus.Group("billing"))

	ctx := context.Background()
	for _, key := range []string{"a", "flaky", "b", "poison", "c"} {
		m := bus.NewMessage("test.event", []byte(key))
		m.Key = key
		if err := pub.Publish(ctx, topic, m); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	// Wait for the 7 attempts: 5 first ones and 2 retries.
	deadline := time.Now().Add(30 * time.Second)
	for sum(t, h.collect(t)[otelbus.MetricOutcomes]) < 7 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 7 handler attempts after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A Publish that fails.
	_ = rawPub.Close()
	if err := pub.Publish(ctx, topic, bus.NewMessage("test.event", nil)); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}

	ms := h.collect(t)
	dest := attribute.String("messaging.destination.name", topic)
	outcome := func(o string) attribute.KeyValue { return otelbus.OutcomeKey.String(o) }
	checks := []struct {
		name string
		got  int64
		want int64
	}{
		{"sent", sum(t, ms[otelbus.MetricSent], dest), 6},
		{"sent with error.type closed", sum(t, ms[otelbus.MetricSent], dest, attribute.String("error.type", "closed")), 1},
		{"consumed", sum(t, ms[otelbus.MetricConsumed], dest, attribute.String("messaging.consumer.group.name", "billing")), 5},
		{"ack", sum(t, ms[otelbus.MetricOutcomes], dest, outcome(otelbus.OutcomeAck)), 4},
		{"retry", sum(t, ms[otelbus.MetricOutcomes], dest, outcome(otelbus.OutcomeRetry)), 2},
		{"dead_letter", sum(t, ms[otelbus.MetricOutcomes], dest, outcome(otelbus.OutcomeDeadLetter)), 1},
		{"abandon", sum(t, ms[otelbus.MetricOutcomes], dest, outcome(otelbus.OutcomeAbandon)), 0},
		{"active", sum(t, ms[otelbus.MetricActive], dest), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
	if _, ok := ms[otelbus.MetricRedeliveries]; ok {
		if n := sum(t, ms[otelbus.MetricRedeliveries]); n != 0 {
			t.Errorf("redeliveries: %d, want 0", n)
		}
	}
	hist, ok := ms[otelbus.MetricProcessDuration].Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s: %T", otelbus.MetricProcessDuration, ms[otelbus.MetricProcessDuration].Data)
	}
	var attempts, failed uint64
	for _, p := range hist.DataPoints {
		attempts += p.Count
		if _, ok := p.Attributes.Value("error.type"); ok {
			failed += p.Count
		}
	}
	if attempts != 7 || failed != 3 {
		t.Errorf("process.duration: %d attempts, %d failed; want 7 and 3", attempts, failed)
	}
	if d, ok := ms[otelbus.MetricOperationDuration].Data.(metricdata.Histogram[float64]); !ok || len(d.DataPoints) == 0 {
		t.Errorf("no %s", otelbus.MetricOperationDuration)
	}
	// The dead letter is where the outcome says, and carries the trace of
	// the message's publish.
	dl := b.TakeDeadLetters(topic + bus.DeadLetterSuffix)
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	var poison tracetest.SpanStub
	for _, s := range h.spans("process " + topic) {
		if attr(s, otelbus.OutcomeKey).AsString() == otelbus.OutcomeDeadLetter {
			poison = s
		}
	}
	if tp := dl[0].Metadata["traceparent"]; tp == "" || !strings.Contains(tp, poison.SpanContext.TraceID().String()) {
		t.Errorf("dead letter traceparent %q, want one in trace %v", tp, poison.SpanContext.TraceID())
	}
}
