package amqp_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

// brokerURL is the test broker. Tests only ever talk to loopback.
const brokerURL = "amqp://guest:guest@127.0.0.1:5672/"

// testTimeout bounds every wait of a test.
const testTimeout = 60 * time.Second

// uniqueTopic returns a topic no other test uses and deletes what the test
// declared for it (and its dead letter topic) when the test ends.
func uniqueTopic(t testing.TB) string {
	t.Helper()
	topic := "bltest-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + uuid.NewString()[:8]
	t.Cleanup(func() { deleteTopic(t, topic) })
	return topic
}

// deleteTopic removes the exchanges and queues busline declares for topic
// and its dead letter topics, group queues included.
func deleteTopic(t testing.TB, topic string) {
	c, err := amqp091.Dial(brokerURL)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer c.Close()
	// A subscription to the dead letter topic declares a dead letter topic
	// of its own.
	dl := topic + bus.DeadLetterSuffix
	for _, name := range []string{topic, dl, dl + bus.DeadLetterSuffix} {
		for _, q := range append([]string{name}, groupQueues(name)...) {
			if ch, err := c.Channel(); err == nil {
				_, _ = ch.QueueDelete(q, false, false, false)
				_ = ch.Close()
			}
		}
		if ch, err := c.Channel(); err == nil {
			_ = ch.ExchangeDelete(name, false, false)
			_ = ch.Close()
		}
	}
}

// groupQueues are the group names tests use.
func groupQueues(topic string) []string {
	var qs []string
	for _, g := range []string{"g", "g1", "g2", "workers", "restart",
		// the groups of bustest
		"bustest", "billing", "shipping", "late", "drain", "bustest-dead-letters"} {
		qs = append(qs, topic+"."+g)
	}
	return qs
}

func mustConfig(t testing.TB, query string) amqp.Config {
	t.Helper()
	u := brokerURL
	if query != "" {
		u += "?" + query
	}
	cfg, err := amqp.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newPublisher(t testing.TB, cfg amqp.Config) *amqp.Publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p, err := amqp.NewPublisher(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func newSubscriber(t testing.TB, cfg amqp.Config) *amqp.Subscriber {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := amqp.NewSubscriber(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// subscription is a running Subscribe call.
type subscription struct {
	cancel context.CancelFunc
	done   chan error // closed when Subscribe returned, err then set
	err    error
}

// stop ends the subscription and returns Subscribe's result.
func (s *subscription) stop(t testing.TB) error {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
		return s.err
	case <-time.After(testTimeout):
		t.Fatal("Subscribe did not return after its context ended")
		return nil
	}
}

// subscribe starts Subscribe and waits until it is ready.
func subscribe(t testing.TB, s bus.Subscriber, topic string, h bus.Handler, opts ...bus.SubscribeOption) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	sub := &subscription{cancel: cancel, done: make(chan error)}
	opts = append(opts, bus.OnReady(func() { close(ready) }))
	go func() { sub.err = s.Subscribe(ctx, topic, h, opts...); close(sub.done) }()
	select {
	case <-ready:
	case <-sub.done:
		cancel()
		t.Fatalf("Subscribe(%q) failed before ready: %v", topic, sub.err)
	case <-time.After(testTimeout):
		cancel()
		t.Fatalf("Subscribe(%q) not ready after %v", topic, testTimeout)
	}
	t.Cleanup(func() { cancel(); <-sub.done })
	return sub
}

// collector records received messages by ID.
type collector struct {
	mu     sync.Mutex
	seen   map[string]int
	redel  map[string]bool
	msgs   []*bus.Message
	change chan struct{}
}

func newCollector() *collector {
	return &collector{seen: map[string]int{}, redel: map[string]bool{}, change: make(chan struct{}, 1)}
}

func (c *collector) handle(_ context.Context, m *bus.Message) error {
	c.mu.Lock()
	c.seen[m.ID]++
	if m.Delivery.Redelivered {
		c.redel[m.ID] = true
	}
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.change <- struct{}{}:
	default:
	}
	return nil
}

// hasAll reports whether every one of ids was received.
func (c *collector) hasAll(ids []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.seen[id] == 0 {
			return false
		}
	}
	return true
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// waitFor waits until cond holds, up to d.
func (c *collector) waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-c.change:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// waitUntil polls cond every 20ms until it holds or d passes.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func msgs(n int, prefix string) []*bus.Message {
	out := make([]*bus.Message, n)
	for i := range out {
		out[i] = &bus.Message{Body: []byte(fmt.Sprintf("%s-%d", prefix, i))}
	}
	return out
}

// rabbitmqctl runs one rabbitmqctl command on the local broker.
func rabbitmqctl(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Errorf("rabbitmqctl %v: %v\n%s", args, err, out)
	}
}

// rabbitmqctlOut runs one rabbitmqctl command and returns its output.
func rabbitmqctlOut(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", append([]string{"-q"}, args...)...).Output()
	if err != nil {
		t.Fatalf("rabbitmqctl %v: %v", args, err)
	}
	return string(out)
}
