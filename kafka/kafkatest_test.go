package kafka

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/busline/bus"
)

// EnvBrokers names a real cluster (comma-separated host:port) for the
// tests to run against instead of the embedded kfake cluster.
const EnvBrokers = "BUS_KAFKA_BROKERS"

// testPartitions is the partition count of test topics.
const testPartitions = 4

var shared struct {
	once    sync.Once
	brokers []string
	fake    *kfake.Cluster
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.fake != nil {
		shared.fake.Close()
	}
	os.Exit(code)
}

// realCluster reports whether BUS_KAFKA_BROKERS chose a real cluster.
func realCluster() bool { return os.Getenv(EnvBrokers) != "" }

// brokers returns the brokers of the cluster the package's tests share:
// $BUS_KAFKA_BROKERS, or a 3-broker kfake cluster started once.
func brokers(t testing.TB) []string {
	t.Helper()
	shared.once.Do(func() {
		if env := os.Getenv(EnvBrokers); env != "" {
			shared.brokers = strings.Split(env, ",")
			return
		}
		shared.fake, shared.err = kfake.NewCluster(kfake.NumBrokers(3))
		if shared.err == nil {
			shared.brokers = shared.fake.ListenAddrs()
		}
	})
	if shared.err != nil {
		t.Fatalf("start kfake: %v", shared.err)
	}
	return shared.brokers
}

// newFake starts a private 3-broker kfake cluster for a test that injects
// faults into it. Such tests need kfake: against a real cluster
// (BUS_KAFKA_BROKERS set) they are skipped, saying so.
func newFake(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	if realCluster() {
		t.Skipf("needs kfake fault injection; %s names a real cluster", EnvBrokers)
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// testConfig is a Config for the given brokers with group timings short
// enough for tests and valid on a real cluster (whose minimum session
// timeout is 6s).
func testConfig(addrs []string) Config {
	return Config{
		Brokers:           addrs,
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond,
		RebalanceTimeout:  10 * time.Second,
		CommitInterval:    20 * time.Millisecond,
		MaxWait:           100 * time.Millisecond,
		DialTimeout:       5 * time.Second,
	}
}

var topicSeq atomic.Int64

// newTopic creates a topic no other test uses, with its dead letter topic.
func newTopic(t testing.TB, cfg Config, partitions int) string {
	t.Helper()
	name := fmt.Sprintf("busline-%s-%d-%d", sanitize(t.Name()), time.Now().UnixNano()%1e9, topicSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tp := range []string{name, name + bus.DeadLetterSuffix} {
		if err := CreateTopic(ctx, cfg, tp, partitions, 0); err != nil {
			t.Fatalf("create topic %s: %v", tp, err)
		}
	}
	return name
}

func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, s)
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func newTestPublisher(t testing.TB, cfg Config) *Publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := NewPublisher(ctx, cfg)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func newTestSubscriber(t testing.TB, cfg Config) *Subscriber {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := NewSubscriber(ctx, cfg)
	if err != nil {
		t.Fatalf("NewSubscriber: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// running is a Subscribe call running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

// subscribe starts Subscribe in the background and waits for OnReady (or
// an early error).
func subscribe(t testing.TB, s *Subscriber, topic string, h bus.Handler, opts ...bus.SubscribeOption) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	r := &running{cancel: cancel, done: make(chan error, 1)}
	opts = append(opts, bus.OnReady(func() { close(ready) }))
	go func() { r.done <- s.Subscribe(ctx, topic, h, opts...) }()
	select {
	case <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("Subscribe returned before ready: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("Subscribe not ready after 60s")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the subscription and waits for Subscribe to return.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Subscribe: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("Subscribe did not return 60s after its context ended")
	}
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
