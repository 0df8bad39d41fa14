package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
)

func runner(t *testing.T, h bus.Handler, dl DeadLetterFunc, opts ...bus.SubscribeOption) *Runner {
	cfg, err := driver.NewSubscribeConfig("orders", h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &Runner{Topic: "orders", Config: cfg, Handler: h, DeadLetter: dl, Stop: make(chan struct{})}
}

func TestRetriesThenDeadLetters(t *testing.T) {
	var got *bus.Message
	var gotTopic string
	calls := 0
	r := runner(t, func(ctx context.Context, m *bus.Message) error {
		calls++
		if m.Delivery.Attempt != calls {
			t.Errorf("attempt %d on call %d", m.Delivery.Attempt, calls)
		}
		return errors.New(strings.Repeat("e", 10000))
	}, func(ctx context.Context, topic string, m *bus.Message) error {
		got, gotTopic = m, topic
		return nil
	}, bus.Retry(bus.RetryPolicy{MaxAttempts: 3}), bus.Group("billing"))
	m := &bus.Message{ID: "1", Metadata: map[string]string{"a": "b"}}
	if out := r.Handle(context.Background(), m); out != Ack {
		t.Fatalf("outcome %v", out)
	}
	if calls != 3 || gotTopic != "orders.dlq" || got.Metadata[bus.MetaDeadLetterAttempts] != "3" ||
		got.Metadata[bus.MetaDeadLetterGroup] != "billing" || got.Metadata["a"] != "b" {
		t.Fatalf("calls %d, dead letter %q %+v", calls, gotTopic, got)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("dead letter does not validate: %v", err)
	}
	if _, ok := m.Metadata[bus.MetaDeadLetterError]; ok {
		t.Fatal("dead-lettering changed the original message")
	}
}

func TestPanicIsAnError(t *testing.T) {
	var reason string
	r := runner(t, func(ctx context.Context, m *bus.Message) error { panic("kaboom") },
		func(ctx context.Context, topic string, m *bus.Message) error {
			reason = m.Metadata[bus.MetaDeadLetterError]
			return nil
		}, bus.Retry(bus.NoRetry()))
	if r.Handle(context.Background(), &bus.Message{}) != Ack || reason != "panic: kaboom" {
		t.Fatalf("reason %q", reason)
	}
}

func TestAbandon(t *testing.T) {
	failing := func(ctx context.Context, m *bus.Message) error { return errors.New("no") }
	// A failed dead letter publish leaves the message for redelivery.
	r := runner(t, failing, func(context.Context, string, *bus.Message) error { return errors.New("broker down") },
		bus.Retry(bus.NoRetry()))
	start := time.Now()
	if r.Handle(context.Background(), &bus.Message{}) != Abandon {
		t.Fatal("want Abandon when the dead letter publish fails")
	}
	if d := time.Since(start); d < deadLetterFailurePause {
		t.Fatalf("returned after %v; a failed dead letter publish must pause %v before redelivery", d, deadLetterFailurePause)
	}
	// A stopping subscription does not wait out the pause.
	r.Stop = closedChan()
	start = time.Now()
	if r.Handle(context.Background(), &bus.Message{}) != Abandon || time.Since(start) >= deadLetterFailurePause {
		t.Fatal("want Abandon at once when stopping")
	}
	// Stopping during a backoff wait abandons too.
	stop := make(chan struct{})
	r = runner(t, failing, nil, bus.Retry(bus.RetryPolicy{MaxAttempts: 5, MinBackoff: time.Hour}))
	r.Stop = stop
	close(stop)
	if r.Handle(context.Background(), &bus.Message{}) != Abandon {
		t.Fatal("want Abandon on stop")
	}
}

func TestPoison(t *testing.T) {
	var got *bus.Message
	r := runner(t, func(context.Context, *bus.Message) error { t.Fatal("handler called"); return nil },
		func(ctx context.Context, topic string, m *bus.Message) error { got = m; return nil })
	if r.Poison(context.Background(), &bus.Message{Body: []byte("x")}, bus.ErrMalformed) != Ack || got.Metadata[bus.MetaDeadLetterAttempts] != "0" {
		t.Fatalf("%+v", got)
	}
}

// A handler cut short by a shutdown deadline (its context cancelled) on
// its last attempt is left for redelivery, not dead-lettered.
func TestShutdownDeadlineAbandonsLastAttempt(t *testing.T) {
	dead := false
	r := runner(t, func(ctx context.Context, m *bus.Message) error { return ctx.Err() },
		func(context.Context, string, *bus.Message) error { dead = true; return nil },
		bus.Retry(bus.NoRetry()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if out := r.Handle(ctx, &bus.Message{}); out != Abandon || dead {
		t.Fatalf("outcome %v, dead-lettered %v; want Abandon and no dead letter", out, dead)
	}
}

// A message whose handler context ended while it waited for a worker is
// abandoned without calling the handler.
func TestEndedContextSkipsHandler(t *testing.T) {
	r := runner(t, func(context.Context, *bus.Message) error { t.Fatal("handler called"); return nil }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if out := r.Handle(ctx, &bus.Message{}); out != Abandon {
		t.Fatalf("outcome %v, want Abandon", out)
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// An error wrapped with RetryAfter waits the delay it asks for and does
// not count against MaxAttempts; other errors do.
func TestRetryAfter(t *testing.T) {
	calls := 0
	var dead *bus.Message
	r := runner(t, func(ctx context.Context, m *bus.Message) error {
		calls++
		if calls <= 3 {
			return bus.RetryAfter(errors.New("busy, come back later"), 10*time.Millisecond)
		}
		return errors.New("broken")
	}, func(_ context.Context, _ string, m *bus.Message) error { dead = m; return nil },
		bus.Retry(bus.RetryPolicy{MaxAttempts: 1, MinBackoff: time.Hour}))
	start := time.Now()
	r.Stop = closedAfter(t, time.Hour)
	if out := r.Handle(context.Background(), &bus.Message{}); out != Ack || dead == nil {
		t.Fatalf("outcome %v, dead letter %v", out, dead)
	}
	if calls != 4 {
		t.Fatalf("%d calls, want 3 asked-for retries, then the one failure the policy allows", calls)
	}
	if d := time.Since(start); d < 30*time.Millisecond || d > time.Minute {
		t.Fatalf("took %v", d)
	}
	if got := dead.Metadata[bus.MetaDeadLetterAttempts]; got != "4" {
		t.Fatalf("dead letter attempts %q, want 4", got)
	}
}

func closedAfter(t *testing.T, d time.Duration) chan struct{} {
	c := make(chan struct{})
	tm := time.AfterFunc(d, func() { close(c) })
	t.Cleanup(func() { tm.Stop() })
	return c
}
