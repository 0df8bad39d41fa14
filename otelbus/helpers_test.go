package otelbus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/busline/bus"
	"github.com/busline/bus/otelbus"
)

// harness is an Instrumentation recording into an in-memory span exporter
// and a manual metric reader.
type harness struct {
	exp    *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	o      *otelbus.Instrumentation
}

func newHarness(t testing.TB, opts ...otelbus.Option) *harness {
	t.Helper()
	h := &harness{exp: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(h.exp))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	t.Cleanup(func() {
		_ = h.tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	h.o = otelbus.New(append([]otelbus.Option{
		otelbus.TracerProvider(h.tp),
		otelbus.MeterProvider(mp),
		otelbus.Propagator(propagation.TraceContext{}),
	}, opts...)...)
	return h
}

// spans returns the ended spans named name.
func (h *harness) spans(name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range h.exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// waitSpans waits until n spans named name have ended, and returns them
// in the order they ended.
func (h *harness) waitSpans(t testing.TB, name string, n int) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := h.spans(name)
		if len(s) >= n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spans %q after 30s, want %d", len(s), name, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func attr(s tracetest.SpanStub, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

var topicSeq atomic.Int64

// topicName is a topic no other test, and no other run, uses.
func topicName(t testing.TB) string {
	r := strings.NewReplacer("/", "-", " ", "-", "#", "-")
	return fmt.Sprintf("otelbus-%s-%d-%d", strings.ToLower(r.Replace(t.Name())), time.Now().UnixNano()%1e9, topicSeq.Add(1))
}

// subscribe runs Subscribe in the background until the test ends, and
// returns once it is live.
func subscribe(t testing.TB, s bus.Subscriber, topic string, h bus.Handler, opts ...bus.SubscribeOption) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	opts = append(opts, bus.OnReady(func() { close(ready) }))
	go func() { done <- s.Subscribe(ctx, topic, h, opts...) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Subscribe: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("Subscribe not live after 60s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Subscribe: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("Subscribe did not return")
		}
	})
}

// adapter is what the trace checks need of one adapter.
type adapter struct {
	pub bus.Publisher
	sub bus.Subscriber
	// newTopic returns a fresh topic (with its dead letter topic where
	// the broker needs one made).
	newTopic func(t *testing.T) string
	// system is the messaging.system process spans must say.
	system string
	// check runs more checks on a process span.
	check func(t *testing.T, process tracetest.SpanStub)
}

// testTraces checks, on one adapter wired with h's middleware, that a
// publish and its handling form one trace; that retries show as sibling
// process spans with their attempt numbers; and that a permanent failure
// shows the dead letter outcome.
func testTraces(t *testing.T, h *harness, a adapter) {
	pub := bus.UsePublisher(a.pub, h.o.PublishMiddleware())
	sub := bus.UseSubscriber(a.sub, h.o.Middleware())

	publish := func(t *testing.T, topic string) *bus.Message {
		t.Helper()
		m := bus.NewMessage("test.event", []byte("hello"))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pub.Publish(ctx, topic, m); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if m.Metadata["traceparent"] == "" {
			t.Fatalf("Publish left no traceparent in Metadata: %v", m.Metadata)
		}
		return m
	}
	// checkChild checks that process is in send's trace, its child and
	// linked to it.
	checkChild := func(t *testing.T, send, process tracetest.SpanStub) {
		t.Helper()
		if process.SpanKind != trace.SpanKindConsumer || send.SpanKind != trace.SpanKindProducer {
			t.Errorf("kinds: send %v, process %v", send.SpanKind, process.SpanKind)
		}
		if got, want := process.SpanContext.TraceID(), send.SpanContext.TraceID(); got != want {
			t.Errorf("process trace id %v, send trace id %v", got, want)
		}
		if got, want := process.Parent.SpanID(), send.SpanContext.SpanID(); got != want {
			t.Errorf("process parent %v, want the send span %v", got, want)
		}
		if len(process.Links) != 1 || process.Links[0].SpanContext.SpanID() != send.SpanContext.SpanID() {
			t.Errorf("process links %v, want one to the send span", process.Links)
		}
		if got := attr(process, "messaging.system").AsString(); got != a.system {
			t.Errorf("messaging.system %q, want %q", got, a.system)
		}
		if a.check != nil {
			a.check(t, process)
		}
	}

	t.Run("trace", func(t *testing.T) {
		topic := a.newTopic(t)
		subscribe(t, sub, topic, func(ctx context.Context, m *bus.Message) error { return nil })
		m := publish(t, topic)
		send := h.waitSpans(t, "send "+topic, 1)[0]
		process := h.waitSpans(t, "process "+topic, 1)[0]
		checkChild(t, send, process)
		if got := attr(send, "messaging.message.id").AsString(); got != m.ID {
			t.Errorf("send messaging.message.id %q, want %q", got, m.ID)
		}
		if got := attr(process, "messaging.message.id").AsString(); got != m.ID {
			t.Errorf("process messaging.message.id %q, want %q", got, m.ID)
		}
		if got := attr(send, "messaging.operation.type").AsString(); got != "send" {
			t.Errorf("send messaging.operation.type %q", got)
		}
		if got := attr(process, "messaging.operation.type").AsString(); got != "process" {
			t.Errorf("process messaging.operation.type %q", got)
		}
		if got := attr(process, otelbus.OutcomeKey).AsString(); got != otelbus.OutcomeAck {
			t.Errorf("outcome %q, want ack", got)
		}
	})

	t.Run("retries", func(t *testing.T) {
		topic := a.newTopic(t)
		var calls atomic.Int64
		subscribe(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
			if calls.Add(1) <= 2 {
				return errors.New("flaky downstream")
			}
			return nil
		})
		publish(t, topic)
		send := h.waitSpans(t, "send "+topic, 1)[0]
		procs := h.waitSpans(t, "process "+topic, 3)
		want := []string{otelbus.OutcomeRetry, otelbus.OutcomeRetry, otelbus.OutcomeAck}
		for i, p := range procs {
			checkChild(t, send, p)
			if got := attr(p, otelbus.AttemptKey).AsInt64(); got != int64(i+1) {
				t.Errorf("span %d: attempt %d", i, got)
			}
			if got := attr(p, otelbus.OutcomeKey).AsString(); got != want[i] {
				t.Errorf("span %d: outcome %q, want %q", i, got, want[i])
			}
			wantErr := i < 2
			if gotErr := p.Status.Code.String() == "Error"; gotErr != wantErr {
				t.Errorf("span %d: status %v", i, p.Status)
			}
		}
	})

	t.Run("permanent", func(t *testing.T) {
		topic := a.newTopic(t)
		subscribe(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
			return bus.Permanent(errors.New("cannot be handled"))
		})
		publish(t, topic)
		send := h.waitSpans(t, "send "+topic, 1)[0]
		p := h.waitSpans(t, "process "+topic, 1)[0]
		checkChild(t, send, p)
		if got := attr(p, otelbus.OutcomeKey).AsString(); got != otelbus.OutcomeDeadLetter {
			t.Errorf("outcome %q, want dead_letter", got)
		}
		var found bool
		for _, e := range p.Events {
			if e.Name == otelbus.DeadLetterEvent {
				found = true
				for _, kv := range e.Attributes {
					if kv.Key == otelbus.DeadLetterReasonKey && kv.Value.AsString() != "permanent" {
						t.Errorf("dead letter reason %q", kv.Value.AsString())
					}
				}
			}
		}
		if !found {
			t.Errorf("no %s event in %v", otelbus.DeadLetterEvent, p.Events)
		}
		// Nothing more: the message is dead-lettered, not retried.
		time.Sleep(300 * time.Millisecond)
		if n := len(h.spans("process " + topic)); n != 1 {
			t.Errorf("%d process spans, want 1", n)
		}
	})
}

func attrOK(s tracetest.SpanStub, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}
