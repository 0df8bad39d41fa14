package kafka

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/busline/bus"
)

// While the first message of a partition is held by its handler, reading
// goes on for at most MaxUncommitted messages, then pauses until it is
// released: nothing past it can be committed.
func TestMaxUncommittedPausesReading(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"group", "broadcast"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			const limit, others = 10, 100
			cfg := testConfig(brokers(t))
			cfg.MaxUncommitted = limit
			topic := newTopic(t, cfg, 1)
			pub := newTestPublisher(t, cfg)
			release := make(chan struct{})
			var releaseOnce sync.Once
			t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
			var slowDone atomic.Bool
			var othersDone atomic.Int32
			h := func(ctx context.Context, m *bus.Message) error {
				if m.Key == "slow" {
					select {
					case <-release:
					case <-ctx.Done():
						return ctx.Err()
					}
					slowDone.Store(true)
					return nil
				}
				othersDone.Add(1)
				return nil
			}
			sub := newTestSubscriber(t, cfg)
			opts := []bus.SubscribeOption{bus.Concurrency(4)}
			if mode == "group" {
				opts = append(opts, bus.Group(topic))
			}
			subscribe(t, sub, topic, h, opts...)
			msgs := []*bus.Message{{Key: "slow", Body: []byte("x")}}
			for i := range others {
				msgs = append(msgs, &bus.Message{Key: fmt.Sprint("other-", i), Body: []byte("x")})
			}
			publishCtx(t, pub, topic, msgs)

			// Reading parks with the held message and limit-1 others read:
			// none of them can be committed before the held one, so it
			// stays parked until the release.
			waitFor(t, 30*time.Second, "reading to pause at the cap", func() bool {
				n := othersDone.Load()
				return sub.parked.Load() > 0 && n >= limit-1 || n > limit-1
			})
			if n := othersDone.Load(); n != limit-1 {
				t.Fatalf("%d messages handled behind the held one, want %d (max_uncommitted %d)", n, limit-1, limit)
			}
			releaseOnce.Do(func() { close(release) })
			waitFor(t, 30*time.Second, "every message handled after the release", func() bool {
				return slowDone.Load() && othersDone.Load() >= others
			})
		})
	}
}

// Members join one group one after another while every earlier member's
// handler holds a message and waits on its context. Each join costs about
// handler_grace: the earlier members cancel their handlers after it and
// rejoin, instead of holding the rebalance until rebalance_timeout.
func TestJoinsDoNotWaitForHandlers(t *testing.T) {
	t.Parallel()
	const members, partitions = 10, 10
	cfg := testConfig(brokers(t)) // rebalance_timeout 10s
	cfg.HandlerGrace = time.Second
	topic := newTopic(t, cfg, partitions)
	var holding atomic.Int32 // handlers holding a message now
	h := func(ctx context.Context, _ *bus.Message) error {
		holding.Add(1)
		defer holding.Add(-1)
		<-ctx.Done()
		return ctx.Err()
	}
	var msgs []*bus.Message
	for i := range 4 * partitions {
		msgs = append(msgs, &bus.Message{Key: fmt.Sprint("k", i), Body: []byte("x")})
	}
	publishCtx(t, newTestPublisher(t, cfg), topic, msgs)

	subscribe(t, newTestSubscriber(t, cfg), topic, h, bus.Group(topic))
	var total time.Duration
	for i := 1; i < members; i++ {
		waitFor(t, 30*time.Second, "an earlier member's handler to hold a message", func() bool { return holding.Load() > 0 })
		start := time.Now()
		subscribe(t, newTestSubscriber(t, cfg), topic, h, bus.Group(topic))
		d := time.Since(start)
		total += d
		t.Logf("member %d joined in %v", i+1, d.Round(10*time.Millisecond))
		if limit := cfg.HandlerGrace + 3*time.Second; d > limit {
			t.Errorf("member %d took %v to join, want under %v (handler_grace %v, rebalance_timeout %v)",
				i+1, d.Round(10*time.Millisecond), limit, cfg.HandlerGrace, cfg.RebalanceTimeout)
		}
	}
	t.Logf("%d joins took %v (handler_grace %v, rebalance_timeout %v)", members-1, total.Round(10*time.Millisecond),
		cfg.HandlerGrace, cfg.RebalanceTimeout)
}

// When Subscribe's ctx ends while handlers ignore their context, Subscribe
// returns within handler_grace (plus a small bound), and the messages they
// held are handled by the next member.
func TestSubscribeReturnsWithinGrace(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	cfg.HandlerGrace = time.Second
	topic := newTopic(t, cfg, testPartitions)
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	var started atomic.Int32
	r := subscribe(t, newTestSubscriber(t, cfg), topic, func(context.Context, *bus.Message) error {
		started.Add(1)
		<-stuck // ignores its context
		return nil
	}, bus.Group(topic), bus.Concurrency(8))
	var msgs []*bus.Message
	for i := range 20 {
		msgs = append(msgs, &bus.Message{Key: fmt.Sprint("k", i), Body: []byte("x")})
	}
	publishCtx(t, newTestPublisher(t, cfg), topic, msgs)
	waitFor(t, 30*time.Second, "every worker busy", func() bool { return started.Load() >= 8 })

	begin := time.Now()
	r.cancel()
	const bound = 2 * time.Second
	select {
	case err := <-r.done:
		close(r.done) // r.stop at cleanup sees it closed
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	case <-time.After(cfg.HandlerGrace + 30*time.Second):
		t.Fatalf("Subscribe did not return %v after its ctx ended", cfg.HandlerGrace+30*time.Second)
	}
	d := time.Since(begin)
	t.Logf("Subscribe returned %v after its ctx ended (handler_grace %v)", d.Round(10*time.Millisecond), cfg.HandlerGrace)
	if d > cfg.HandlerGrace+bound {
		t.Errorf("Subscribe returned %v after its ctx ended, want within handler_grace %v + %v", d, cfg.HandlerGrace, bound)
	}

	var mu sync.Mutex
	got := map[string]bool{}
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		got[m.Key] = true
		mu.Unlock()
		return nil
	}, bus.Group(topic), bus.Concurrency(8))
	waitFor(t, 30*time.Second, "the next member to handle every message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(msgs)
	})
}

// A handler that ignores its context keeps its message past the end of its
// generation: the member that joined does not wait for it, the message is
// handled again by the partition's next owner (flagged as redelivered only
// when that owner is the same subscription), and when the straggler
// returns later it commits nothing and disturbs nothing: later messages
// are not flagged and the group's offset moves on.
func TestRevokedHandlerIgnoringContext(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	cfg.HandlerGrace = time.Second
	topic := newTopic(t, cfg, 1)
	pub := newTestPublisher(t, cfg)
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var held, straggled atomic.Bool
	type handling struct {
		member      string
		key         string
		redelivered bool
	}
	var mu sync.Mutex
	var log []handling
	count := func(key string) (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, h := range log {
			if h.key == key {
				n++
			}
		}
		return n
	}
	handler := func(member string) bus.Handler {
		return func(_ context.Context, m *bus.Message) error {
			if m.Key == "held" && held.CompareAndSwap(false, true) {
				<-release // ignores its context
				straggled.Store(true)
				return nil
			}
			mu.Lock()
			log = append(log, handling{member, m.Key, m.Delivery.Redelivered})
			mu.Unlock()
			return nil
		}
	}
	subscribe(t, newTestSubscriber(t, cfg), topic, handler("a"), bus.Group(topic))
	publishCtx(t, pub, topic, []*bus.Message{{Key: "held", Body: []byte("x")}})
	waitFor(t, 30*time.Second, "the handler to hold the message", held.Load)

	start := time.Now()
	subscribe(t, newTestSubscriber(t, cfg), topic, handler("b"), bus.Group(topic))
	if d, limit := time.Since(start), cfg.HandlerGrace+3*time.Second; d > limit {
		t.Errorf("the second member took %v to join, want under %v", d, limit)
	}
	waitFor(t, 30*time.Second, "the held message handled by the next owner", func() bool { return count("held") > 0 })
	releaseOnce.Do(func() { close(release) })
	waitFor(t, 10*time.Second, "the straggler to return", straggled.Load)
	publishCtx(t, pub, topic, []*bus.Message{{Key: "after", Body: []byte("x")}})
	waitFor(t, 30*time.Second, "the next message handled", func() bool { return count("after") > 0 })

	client, done := newTestSubscriber(t, cfg).c.admin()
	defer done()
	waitFor(t, 30*time.Second, "the group's offset past both messages", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: topic, Topics: map[string][]int{topic: {0}}})
		if err != nil || len(resp.Topics[topic]) == 0 {
			return false
		}
		return resp.Topics[topic][0].CommittedOffset == 2
	})
	mu.Lock()
	defer mu.Unlock()
	for _, h := range log {
		// Only member a handed "held" to a handler before.
		if want := h.key == "held" && h.member == "a"; h.redelivered != want {
			t.Errorf("member %s handled %q with Redelivered %v, want %v", h.member, h.key, h.redelivered, want)
		}
	}
	t.Logf("handlings after the rebalance: %+v", log)
}
