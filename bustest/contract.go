package bustest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/busline/bus"
)

// The checks in this file hold every adapter to the rules that bus's
// package doc states once for all of them: what Subscribe returns when it
// never went live, that a caller's logger is used, that capabilities tell
// the truth, that a busy key does not starve the others, and that Shutdown
// keeps its deadline.

// cancelledBeforeReady: a Subscribe whose ctx has ended before the
// subscription is live returns the context's error and never calls OnReady.
func (s *suite) cancelledBeforeReady(t *testing.T) {
	topic := s.topic(t)
	sub := s.sub(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ready := false
	err := sub.Subscribe(ctx, topic, newCollector().handler, append(s.shared(topic), bus.OnReady(func() { ready = true }))...)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with an ended ctx = %v, want an error wrapping context.Canceled", err)
	}
	if ready {
		t.Fatal("OnReady called for a subscription that never went live")
	}
}

// closedRules: Subscribe after Close fails with ErrClosed even with
// a context that has ended, and bad arguments are reported before it.
func (s *suite) closedRules(t *testing.T) {
	topic := s.topic(t)
	sub := s.h.NewSubscriber(t)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sub.Subscribe(ctx, topic, newCollector().handler, s.shared(topic)...); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Subscribe after Close with an ended ctx = %v, want ErrClosed", err)
	}
	if err := sub.Subscribe(context.Background(), topic, nil); !errors.Is(err, bus.ErrInvalid) {
		t.Fatalf("Subscribe with a nil handler after Close = %v, want ErrInvalid (arguments are checked first)", err)
	}
}

// loggerWins: the logger given with bus.Logger receives the subscription's
// logs (here the warning for a dead-lettered message), not the adapter's.
func (s *suite) loggerWins(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	rec := &recorder{}
	h := func(context.Context, *bus.Message) error { return bus.Permanent(errors.New("refused")) }
	s.start(t, s.sub(t), topic, h, append(s.shared(topic), bus.Logger(slog.New(rec)))...)
	publishN(t, ctx, s.pub(t), topic, 1, plain)
	waitFor(t, s.h.Timeout, nil, func() bool { return rec.count() > 0 },
		func() string { return "a log record in the subscription's own logger" })
}

// recorder is a slog.Handler that counts records at Warn and above.
type recorder struct{ n atomic.Int32 }

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (r *recorder) Handle(context.Context, slog.Record) error    { r.n.Add(1); return nil }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *recorder) WithGroup(string) slog.Handler                { return r }
func (r *recorder) count() int                                   { return int(r.n.Load()) }

// receiverCount: a publisher whose capabilities report ReceiverCount
// implements bus.ReceiverCounter; one whose capabilities do not either
// does not implement it or fails PublishCount with ErrUnsupported.
func (s *suite) receiverCount(t *testing.T) {
	ctx := s.ctx(t)
	p := s.pub(t)
	cr, ok := p.(bus.CapabilityReporter)
	if !ok {
		t.Fatalf("%T does not implement bus.CapabilityReporter", p)
	}
	rc, counts := p.(bus.ReceiverCounter)
	switch {
	case cr.Capabilities().ReceiverCount && !counts:
		t.Fatalf("%T reports ReceiverCount but does not implement bus.ReceiverCounter", p)
	case !cr.Capabilities().ReceiverCount && counts:
		if _, err := rc.PublishCount(ctx, s.topic(t), &bus.Message{}); !errors.Is(err, bus.ErrUnsupported) {
			t.Fatalf("PublishCount where capabilities say no ReceiverCount = %v, want ErrUnsupported", err)
		}
	}
}

// hotKey: messages waiting behind a busy key do not hold the workers: with
// Concurrency(4) and 8 messages of one key whose handler is blocked, the
// messages of other keys published after them are still handled.
func (s *suite) hotKey(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	const conc, hot, cold = 4, 8, 6
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var coldDone atomic.Int32
	done := newCollector()
	h := func(hctx context.Context, m *bus.Message) error {
		if m.Key == "hot" {
			select {
			case <-release:
			case <-hctx.Done():
				return hctx.Err()
			}
		} else {
			coldDone.Add(1)
		}
		return done.handler(hctx, m)
	}
	s.start(t, s.sub(t), topic, h, append(s.shared(topic), bus.Concurrency(conc))...)
	p := s.pub(t)
	publishN(t, ctx, p, topic, hot, func(i int) *bus.Message {
		return &bus.Message{Key: "hot", Body: []byte(strconv.Itoa(i))}
	})
	publishN(t, ctx, p, topic, cold, func(i int) *bus.Message {
		return &bus.Message{Key: fmt.Sprint("cold-", i), Body: []byte(strconv.Itoa(i))}
	})
	waitFor(t, s.h.Timeout, nil, func() bool { return coldDone.Load() >= cold },
		func() string {
			return fmt.Sprintf("the other keys' messages handled while one key is busy (%d of %d)", coldDone.Load(), cold)
		})
	releaseOnce.Do(func() { close(release) })
	done.waitUnique(t, hot+cold, s.h.Timeout)
}

// shutdownDeadline: Shutdown returns its context's error once the context
// ends, even when a handler ignores its own cancelled context, and
// Subscribe returns too; on an at-least-once adapter with durable groups,
// the unfinished message is delivered again to the next member.
func (s *suite) shutdownDeadline(t *testing.T) {
	topic := s.topic(t)
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	var entered atomic.Bool
	started := make(chan struct{})
	h := func(context.Context, *bus.Message) error {
		if entered.CompareAndSwap(false, true) {
			close(started)
		}
		<-stuck // ignores its context
		return nil
	}
	opts := s.shared(topic)
	if s.caps.DurableGroups {
		opts = []bus.SubscribeOption{s.group(topic, "deadline")}
	}
	sub := s.h.NewSubscriber(t)
	sd, ok := sub.(bus.Shutdowner)
	if !ok {
		t.Fatalf("%T does not implement bus.Shutdowner", sub)
	}
	r := s.start(t, sub, topic, h, opts...)
	ids := publishN(t, s.ctx(t), s.pub(t), topic, 1, plain)
	select {
	case <-started:
	case <-time.After(s.h.Timeout):
		t.Fatal("handler not called")
	}
	const deadline = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	begin := time.Now()
	done := make(chan error, 1)
	go func() { done <- sd.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want an error wrapping context.DeadlineExceeded", err)
		}
	case <-time.After(deadline + 10*time.Second):
		t.Fatal("Shutdown waited far past its deadline for a handler that ignores its context")
	}
	t.Logf("Shutdown returned %v after its %v deadline began", time.Since(begin).Round(time.Millisecond), deadline)
	if err := r.stop(t, 10*time.Second); err != nil {
		t.Fatalf("Subscribe returned %v after Shutdown, want nil", err)
	}
	if !s.caps.AtLeastOnce || !s.caps.DurableGroups {
		return
	}
	again := newCollector()
	s.start(t, s.sub(t), topic, again.handler, opts...)
	again.waitUnique(t, len(ids), s.h.Timeout)
}

// middleware: middleware added to the Subscriber runs outside the
// subscription's own, in the order given, and sees every attempt; publish
// middleware runs around Publish and may add metadata that arrives.
func (s *suite) middleware(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	var mu sync.Mutex
	var trail []string
	mark := func(name string) bus.Middleware {
		return func(next bus.Handler) bus.Handler {
			return func(ctx context.Context, m *bus.Message) error {
				mu.Lock()
				trail = append(trail, fmt.Sprintf("%s%d", name, m.Delivery.Attempt))
				mu.Unlock()
				return next(ctx, m)
			}
		}
	}
	done := newCollector()
	h := func(ctx context.Context, m *bus.Message) error {
		if m.Metadata["stamped"] != "yes" {
			return bus.Permanent(fmt.Errorf("publish middleware's metadata missing: %v", m.Metadata))
		}
		if m.Delivery.Attempt == 1 {
			return errors.New("first attempt fails")
		}
		return done.handler(ctx, m)
	}
	sub := bus.UseSubscriber(s.sub(t), mark("a"))
	s.start(t, sub, topic, h, append(s.shared(topic), bus.Use(mark("b"), mark("c")),
		bus.Retry(bus.RetryPolicy{MaxAttempts: 3}))...)
	stamp := func(next bus.PublishFunc) bus.PublishFunc {
		return func(ctx context.Context, topic string, msgs ...*bus.Message) error {
			for _, m := range msgs {
				if m.Metadata == nil {
					m.Metadata = map[string]string{}
				}
				m.Metadata["stamped"] = "yes"
			}
			return next(ctx, topic, msgs...)
		}
	}
	pub := bus.UsePublisher(s.pub(t), stamp)
	if err := pub.Publish(ctx, topic, &bus.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	done.waitUnique(t, 1, s.h.Timeout)
	mu.Lock()
	defer mu.Unlock()
	if got, want := fmt.Sprint(trail), "[a1 b1 c1 a2 b2 c2]"; got != want {
		t.Fatalf("middleware calls %s, want %s", got, want)
	}
}

// bustestOrder is the event of the typed round trip.
type bustestOrder struct {
	ID    int      `json:"id"`
	Items []string `json:"items"`
}

// typed: a Go value published with bus.Encode arrives, through a Router
// and bus.Handle, as an equal value; a body that does not decode and a
// type without a route are each dead-lettered once, with the reason,
// without retries.
func (s *suite) typed(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	dead := s.deadLetters(t, topic+bus.DeadLetterSuffix)
	got := make(chan bustestOrder, 1)
	var calls atomic.Int32
	r := bus.NewRouter().Route("bustest.order.v2", bus.Handle(func(_ context.Context, o bustestOrder, _ *bus.Message) error {
		calls.Add(1)
		got <- o
		return nil
	}))
	s.start(t, s.sub(t), topic, r.Handle, s.shared(topic)...)
	want := bustestOrder{ID: 7, Items: []string{"tea", "cake"}}
	good, err := bus.Encode("bustest.order.v2", want, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := &bus.Message{Type: "bustest.order.v2", ContentType: "application/json", Body: []byte("{not json")}
	unknown := &bus.Message{Type: "bustest.order.v1", Body: []byte("{}")}
	if err := s.pub(t).Publish(ctx, topic, good, bad, unknown); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-got:
		if fmt.Sprint(o) != fmt.Sprint(want) {
			t.Fatalf("handled %+v, want %+v", o, want)
		}
	case <-time.After(s.h.Timeout):
		t.Fatal("typed message not handled")
	}
	byID := map[string]*bus.Message{}
	for _, m := range dead(2) {
		if byID[m.ID] != nil {
			t.Fatalf("message %s dead-lettered twice", m.ID)
		}
		byID[m.ID] = m
	}
	for _, c := range []struct {
		m      *bus.Message
		reason string
	}{{bad, "malformed"}, {unknown, "no handler"}} {
		d := byID[c.m.ID]
		if d == nil {
			t.Fatalf("%s message %s not dead-lettered; got %v", c.m.Type, c.m.ID, byID)
		}
		if reason := d.Metadata[bus.MetaDeadLetterError]; !strings.Contains(reason, c.reason) {
			t.Errorf("dead letter of %s: reason %q, want it to mention %q", c.m.ID, reason, c.reason)
		}
		if a := d.Metadata[bus.MetaDeadLetterAttempts]; a != "1" {
			t.Errorf("dead letter of %s after %s attempts, want 1 (no retries)", c.m.ID, a)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("typed handler called %d times, want 1", n)
	}
}
