package kafka

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/bus"
)

// A message whose dead letter publish fails is abandoned and read again,
// flagged as redelivered; the later messages of its key must not be
// handled before it is.
func TestAbandonKeepsKeyOrder(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 1)
	pub := newTestPublisher(t, cfg)
	var (
		mu     sync.Mutex
		failed bool
		acked  []string // seq of each successful handling, in order
	)
	h := func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if m.Metadata["seq"] == "0" && !failed {
			if m.Delivery.Redelivered {
				return errors.New("first delivery flagged as a redelivery")
			}
			failed = true
			return errors.New("first attempt fails")
		}
		if m.Metadata["seq"] == "0" && !m.Delivery.Redelivered {
			return errors.New("message read again after it was abandoned is not flagged as redelivered")
		}
		acked = append(acked, m.Metadata["seq"])
		return nil
	}
	// The dead letter topic does not exist (and is not created): the
	// failed message is abandoned.
	subscribe(t, newTestSubscriber(t, cfg), topic, h, bus.Group("g"), bus.Concurrency(2),
		bus.Retry(bus.NoRetry()), bus.DeadLetter(topic+".missing"))
	publishCtx(t, pub, topic, keyedBatch(1, 0, 2))
	waitFor(t, 30*time.Second, "both messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 2 && failed
	})
	mu.Lock()
	defer mu.Unlock()
	if acked[0] != "0" {
		t.Fatalf("seq 1 of the key handled before seq 0 (which was abandoned): %v", acked)
	}
}

// A handler whose context a Shutdown deadline cancels, on its last
// attempt, leaves its message uncommitted for another member; it is not
// dead-lettered and committed.
func TestShutdownDeadlineLeavesMessageForRedelivery(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 1)
	pub := newTestPublisher(t, cfg)
	started := make(chan struct{}, 1)
	s1 := newTestSubscriber(t, cfg)
	subscribe(t, s1, topic, func(ctx context.Context, _ *bus.Message) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}, bus.Group("g"), bus.Retry(bus.NoRetry()))
	publishCtx(t, pub, topic, keyedBatch(1, 0, 1))
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("handler not called")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = s1.Shutdown(ctx)

	var mu sync.Mutex
	got := 0
	subscribe(t, newTestSubscriber(t, cfg), topic, func(context.Context, *bus.Message) error {
		mu.Lock()
		got++
		mu.Unlock()
		return nil
	}, bus.Group("g"))
	waitFor(t, 20*time.Second, "the message handled again by the next member", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got > 0
	})
}

// A broadcast subscriber reads partitions added to its topic while it
// runs: messages that land on them are not missed.
func TestBroadcastReadsAddedPartitions(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 1)
	var mu sync.Mutex
	got := map[string]bool{}
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		got[m.Key] = true
		mu.Unlock()
		return nil
	})

	sub := newTestSubscriber(t, cfg)
	client, done := sub.c.admin()
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.CreatePartitions(ctx, &kafkago.CreatePartitionsRequest{
		Topics: []kafkago.TopicPartitionsConfig{{Name: topic, Count: 4}}})
	if err == nil && len(resp.Errors) > 0 {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("add partitions: %v", err)
	}
	// A publisher made now sees the 4 partitions: 40 keys cover them all.
	msgs := keyedBatch(40, 0, 1)
	publishCtx(t, newTestPublisher(t, cfg), topic, msgs)
	waitFor(t, 30*time.Second, "every key, on old and new partitions", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(msgs)
	})
}

// Shutdown returns by its deadline even while produce requests keep being
// retried against a cluster that is gone.
func TestShutdownBoundedWhileBrokerDown(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := testConfig(fake.ListenAddrs())
	cfg.WriteTimeout = time.Minute
	topic := newTopic(t, cfg, 1)
	pub := newTestPublisher(t, cfg)
	publishCtx(t, pub, topic, keyedBatch(1, 0, 1)) // warm: metadata and connections
	fake.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := pub.Publish(ctx, topic, keyedBatch(1, 1, 2)...); err == nil {
		t.Fatal("publish to a cluster that is gone succeeded")
	}
	start := time.Now()
	sctx, scancel := context.WithTimeout(context.Background(), time.Second)
	defer scancel()
	_ = pub.Shutdown(sctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown with a 1s deadline took %v", d)
	}
}

// A message still waiting for its partition's request when its Publish
// gives up is not sent later: a Publish that returned an error does not
// publish behind the caller's back.
func TestGivenUpMessageIsNotSentLater(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := testConfig(fake.ListenAddrs())
	topic := newTopic(t, cfg, 1)
	pub := newTestPublisher(t, cfg)
	publishCtx(t, pub, topic, []*bus.Message{{Key: "k", Body: []byte("warm")}})

	// Hold the next produce request until the test lets it go.
	release, held := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fake.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		once.Do(func() { close(held); fake.SleepControl(func() { <-release }) })
		return nil, nil, false
	})
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		first <- pub.Publish(ctx, topic, &bus.Message{Key: "k", Body: []byte("first")})
	}()
	// "first" is in flight and held; "given-up" queues behind it and its
	// caller leaves.
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the first produce request never reached the broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := pub.Publish(ctx, topic, &bus.Message{Key: "k", Body: []byte("given-up")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish behind a held request: %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	publishCtx(t, pub, topic, []*bus.Message{{Key: "k", Body: []byte("last")}})

	var mu sync.Mutex
	var got []string
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		got = append(got, string(m.Body))
		mu.Unlock()
		return nil
	}, bus.Group("g"))
	waitFor(t, 30*time.Second, "the last message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1] == "last"
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []string{"warm", "first", "last"}) {
		t.Fatalf("the topic holds %q", got)
	}
}
