package redispubsub_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
	"github.com/busline/bus/redispubsub"
)

// redisAddr is the Redis server every test talks to.
const redisAddr = "127.0.0.1:6379"

const waitLimit = 20 * time.Second

// quietLog drops go-redis's own process-wide log lines (dial failures the
// bad-input tests provoke on purpose).
type quietLog struct{}

func (quietLog) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	goredis.SetLogger(quietLog{})
	code := m.Run()
	stopCluster()
	os.Exit(code)
}

func uniqueTopic(t testing.TB) string {
	return "busline-test-" + uuid.NewString()[:12]
}

func standaloneConfig() redispubsub.Config {
	return redispubsub.Config{Addr: redisAddr}
}

func newPublisher(t testing.TB, cfg redispubsub.Config) *redispubsub.Publisher {
	t.Helper()
	p, err := redispubsub.NewPublisher(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func newSubscriber(t testing.TB, cfg redispubsub.Config) *redispubsub.Subscriber {
	t.Helper()
	s, err := redispubsub.NewSubscriber(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewSubscriber: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawClient is a plain go-redis client, standing for any other program.
func rawClient(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// start runs Subscribe in a goroutine, waits until it is ready and returns
// a function that stops it and returns Subscribe's result.
func start(t testing.TB, s bus.Subscriber, topic string, h bus.Handler, opts ...bus.SubscribeOption) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	opts = append(opts, bus.OnReady(func() { close(ready) }))
	go func() { done <- s.Subscribe(ctx, topic, h, opts...) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(waitLimit):
				result = errors.New("subscribe did not return after cancel")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Subscribe(%q) returned before ready: %v", topic, err)
	case <-time.After(waitLimit):
		t.Fatalf("Subscribe(%q) not ready within %v", topic, waitLimit)
	}
	return stop
}

// inbox collects received messages.
type inbox struct {
	mu   sync.Mutex
	msgs []*bus.Message
	poke chan struct{}
}

func newInbox() *inbox { return &inbox{poke: make(chan struct{}, 1)} }

func (b *inbox) handler(_ context.Context, m *bus.Message) error {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	select {
	case b.poke <- struct{}{}:
	default:
	}
	return nil
}

func (b *inbox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

func (b *inbox) all() []*bus.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*bus.Message(nil), b.msgs...)
}

// wait waits until at least n messages arrived.
func (b *inbox) wait(t testing.TB, n int) []*bus.Message {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d messages", n), b.poke, func() bool { return b.len() >= n })
	return b.all()
}

// waitUntil polls cond (and wakes on poke) until it holds, failing the test
// after waitLimit.
func waitUntil(t testing.TB, what string, poke <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-poke:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
	}
}
