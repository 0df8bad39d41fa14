package bustest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/busline/bus"
)

// suite is one Run: the harness, its defaults and the adapter's
// capabilities.
type suite struct {
	h    Harness
	caps bus.Capabilities
}

func (s *suite) topic(t *testing.T) string {
	if s.h.NewTopic != nil {
		return s.h.NewTopic(t)
	}
	return "bustest-" + uuid.NewString()[:8]
}

func (s *suite) pub(t *testing.T) bus.Publisher {
	p := s.h.NewPublisher(t)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func (s *suite) sub(t *testing.T) bus.Subscriber {
	sub := s.h.NewSubscriber(t)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// shared returns the options of a subscription that receives every message
// of topic on this adapter: broadcast where it exists, else the topic's
// only group.
func (s *suite) shared(topic string) []bus.SubscribeOption {
	switch {
	case s.caps.Broadcast:
		return nil
	case s.caps.SingleGroup:
		return []bus.SubscribeOption{bus.Group(topic)}
	default:
		return []bus.SubscribeOption{bus.Group("bustest")}
	}
}

// group returns the options for membership of a group of topic: name on
// adapters with many groups, the topic's own group on SingleGroup ones.
func (s *suite) group(topic, name string) bus.SubscribeOption {
	if s.caps.SingleGroup {
		return bus.Group(topic)
	}
	return bus.Group(name)
}

// running is a live subscription started by start.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Subscribe returned
	err    error         // what it returned, valid once done is closed
}

// stop ends the subscription and returns what Subscribe returned.
func (r *running) stop(t *testing.T, timeout time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		t.Fatalf("Subscribe did not return within %v of its context ending", timeout)
		return nil
	}
}

// start runs Subscribe in a goroutine and returns once it is ready, failing
// the test when Subscribe returns first or readiness takes too long.
func (s *suite) start(t *testing.T, sub bus.Subscriber, topic string, h bus.Handler, opts ...bus.SubscribeOption) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once sync.Once
	opts = append(opts, bus.OnReady(func() { once.Do(func() { close(ready) }) }))
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = sub.Subscribe(ctx, topic, h, opts...)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(s.h.Timeout):
		}
	})
	select {
	case <-ready:
		return r
	case <-r.done:
		t.Fatalf("Subscribe(%q) returned before it was ready: %v", topic, r.err)
	case <-time.After(s.h.Timeout):
		t.Fatalf("Subscribe(%q) was not ready within %v", topic, s.h.Timeout)
	}
	return nil
}

// collector records received messages and lets a test wait for them.
type collector struct {
	mu     sync.Mutex
	msgs   []*bus.Message
	byID   map[string]int
	notify chan struct{}
}

func newCollector() *collector {
	return &collector{byID: map[string]int{}, notify: make(chan struct{}, 1)}
}

func (c *collector) add(m *bus.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.byID[m.ID]++
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// handler is a bus.Handler that records and acks.
func (c *collector) handler(_ context.Context, m *bus.Message) error {
	c.add(m)
	return nil
}

func (c *collector) unique() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

func (c *collector) snapshot() []*bus.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*bus.Message(nil), c.msgs...)
}

// waitUnique waits until n distinct message IDs arrived.
func (c *collector) waitUnique(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, c.notify, func() bool { return c.unique() >= n },
		func() string { return fmt.Sprintf("got %d of %d distinct messages", c.unique(), n) })
}

// waitFor waits until cond holds, re-checking when poke fires and at least
// every 50ms, and fails with what() after timeout.
func waitFor(t *testing.T, timeout time.Duration, poke <-chan struct{}, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-poke:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v: %s", timeout, what())
		}
	}
}

// noDuplicates fails when a message arrived twice without being flagged as
// a redelivery.
func (c *collector) noDuplicates(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range c.msgs {
		if seen[m.ID] && !m.Delivery.Redelivered && m.Delivery.Attempt <= 1 {
			t.Fatalf("message %s delivered twice without the redelivered flag", m.ID)
		}
		seen[m.ID] = true
	}
}

// publishN publishes n small messages from one goroutine, in batches, and
// returns their IDs.
func publishN(t *testing.T, ctx context.Context, p bus.Publisher, topic string, n int, mk func(i int) *bus.Message) []string {
	t.Helper()
	ids := make([]string, 0, n)
	const batch = 50
	for i := 0; i < n; i += batch {
		var msgs []*bus.Message
		for j := i; j < n && j < i+batch; j++ {
			m := mk(j)
			msgs = append(msgs, m)
		}
		if err := p.Publish(ctx, topic, msgs...); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

func plain(i int) *bus.Message {
	return &bus.Message{Type: "bustest.plain", Body: []byte(fmt.Sprintf("message %d", i))}
}
