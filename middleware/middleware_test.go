package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/busline/bus"
	"github.com/busline/bus/mem"
	"github.com/busline/bus/middleware"
)

// run subscribes h with opts on a fresh in-process broker, publishes msgs
// and returns the broker, the topic and a stop function.
func run(t *testing.T, h bus.Handler, msgs []*bus.Message, opts ...bus.SubscribeOption) (*mem.Broker, string) {
	t.Helper()
	b := mem.NewBroker()
	sub := mem.NewSubscriber(mem.Config{Broker: b})
	pub := mem.NewPublisher(mem.Config{Broker: b})
	t.Cleanup(func() { _ = sub.Close(); _ = pub.Close() })
	running, err := bus.Start(context.Background(), sub, "t", h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = running.Stop() })
	if err := pub.Publish(context.Background(), "t", msgs...); err != nil {
		t.Fatal(err)
	}
	return b, "t"
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A handler slower than the timeout sees its context end, fails the
// attempt with ErrTimeout, and is retried; the next attempt succeeds.
func TestTimeout(t *testing.T) {
	var mu sync.Mutex
	var errs []error
	done := make(chan struct{})
	h := func(ctx context.Context, m *bus.Message) error {
		if m.Delivery.Attempt == 1 {
			<-ctx.Done()
			return ctx.Err()
		}
		close(done)
		return nil
	}
	record := func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, m *bus.Message) error {
			err := next(ctx, m)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return err
		}
	}
	run(t, h, []*bus.Message{{Body: []byte("x")}},
		bus.Use(record, middleware.Timeout(20*time.Millisecond)), bus.Retry(bus.RetryPolicy{MaxAttempts: 2}))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no second attempt")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) < 1 || !errors.Is(errs[0], middleware.ErrTimeout) {
		t.Fatalf("first attempt's error %v, want ErrTimeout", errs)
	}
}

// The limiter spaces the attempts: 5 messages at 50/s with a burst of 1
// take at least 80 ms.
func TestRateLimit(t *testing.T) {
	const n = 5
	var mu sync.Mutex
	var times []time.Time
	h := func(ctx context.Context, m *bus.Message) error {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		return nil
	}
	msgs := make([]*bus.Message, n)
	for i := range msgs {
		msgs[i] = &bus.Message{}
	}
	run(t, h, msgs, bus.Use(middleware.RateLimit(rate.NewLimiter(50, 1))), bus.Concurrency(4))
	waitFor(t, "every message handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) == n })
	mu.Lock()
	defer mu.Unlock()
	first, last := times[0], times[0]
	for _, tm := range times {
		if tm.Before(first) {
			first = tm
		}
		if tm.After(last) {
			last = tm
		}
	}
	if span := last.Sub(first); span < 70*time.Millisecond {
		t.Fatalf("%d messages handled within %v at 50/s", n, span)
	}
}

// A rate limit wait ends with the handler's context, without calling the
// handler.
func TestRateLimitEndsWithContext(t *testing.T) {
	l := rate.NewLimiter(rate.Every(time.Hour), 1)
	l.Allow() // empty the bucket
	called := false
	h := middleware.RateLimit(l)(func(context.Context, *bus.Message) error { called = true; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h(ctx, &bus.Message{}); !errors.Is(err, context.Canceled) || called {
		t.Fatalf("err %v, called %v", err, called)
	}
}

// Log writes a Warn record for a failed attempt and a Debug one for a
// handled message, with the attempt number.
func TestLog(t *testing.T) {
	var buf syncBuffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	done := make(chan struct{})
	h := func(ctx context.Context, m *bus.Message) error {
		if m.Delivery.Attempt == 1 {
			return errors.New("boom")
		}
		close(done)
		return nil
	}
	run(t, h, []*bus.Message{{ID: "m1"}}, bus.Use(middleware.Log(l)), bus.Retry(bus.RetryPolicy{MaxAttempts: 2}))
	<-done
	waitFor(t, "two log records", func() bool { return strings.Count(buf.String(), "\n") >= 2 })
	out := buf.String()
	for _, want := range []string{`level=WARN msg="bus: handler failed"`, "attempt=1", "error=boom",
		`level=DEBUG msg="bus: message handled"`, "attempt=2", "id=m1", "topic=t"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
