package mem_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/busline/bus"
	"github.com/busline/bus/mem"
)

func subscribe(t *testing.T, s bus.Subscriber, topic string, h bus.Handler, opts ...bus.SubscribeOption) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		require.NoError(t, s.Subscribe(ctx, topic, h, append(opts, bus.OnReady(func() { close(ready) }))...))
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-ready
}

func TestDeadLettersAreKeptWithoutSubscriber(t *testing.T) {
	b := mem.NewBroker()
	pub, sub := mem.NewPublisher(mem.Config{Broker: b}), mem.NewSubscriber(mem.Config{Broker: b})
	defer pub.Close()
	defer sub.Close()
	handled := make(chan struct{})
	subscribe(t, sub, "t", func(context.Context, *bus.Message) error {
		defer close(handled)
		return bus.Permanent(errors.New("no"))
	})
	require.NoError(t, pub.Publish(context.Background(), "t", &bus.Message{ID: "x"}))
	<-handled
	require.Eventually(t, func() bool { return len(b.TakeDeadLetters("t.dlq")) == 1 }, bus.DefaultCloseTimeout, time.Millisecond)
}

func TestNamedBrokersAreSeparate(t *testing.T) {
	ctx := context.Background()
	pa, err := bus.OpenPublisher(ctx, "mem://a")
	require.NoError(t, err)
	sb, err := bus.OpenSubscriber(ctx, "mem://b")
	require.NoError(t, err)
	got := make(chan struct{}, 1)
	subscribe(t, sb, "t", func(context.Context, *bus.Message) error { got <- struct{}{}; return nil })
	n, err := pa.(bus.ReceiverCounter).PublishCount(ctx, "t", &bus.Message{})
	require.NoError(t, err)
	require.Zero(t, n)
	require.Same(t, mem.Named("a"), mem.Named("a"))
	require.Empty(t, got)
}

func TestOversizedBody(t *testing.T) {
	pub, err := bus.OpenPublisher(context.Background(), "mem://?max_message_bytes=4")
	require.NoError(t, err)
	err = pub.Publish(context.Background(), "t", &bus.Message{Body: []byte("12345")})
	require.ErrorIs(t, err, bus.ErrTooLarge)
	require.Contains(t, err.Error(), "over the limit of 4")
}

// BenchmarkEndToEnd measures publish → handler → ack through the broker,
// one message per Publish, with the allocations of each message.
func BenchmarkEndToEnd(b *testing.B) {
	for _, conc := range []int{1, 8} {
		b.Run(map[int]string{1: "concurrency=1", 8: "concurrency=8"}[conc], func(b *testing.B) {
			br := mem.NewBroker()
			pub, sub := mem.NewPublisher(mem.Config{Broker: br}), mem.NewSubscriber(mem.Config{Broker: br})
			defer pub.Close()
			var wg sync.WaitGroup
			ready := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = sub.Subscribe(ctx, "bench", func(context.Context, *bus.Message) error { wg.Done(); return nil },
					bus.Concurrency(conc), bus.OnReady(func() { close(ready) }))
			}()
			<-ready
			body := make([]byte, 1024)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				wg.Add(1)
				if err := pub.Publish(ctx, "bench", &bus.Message{ID: "fixed", Type: "t", Source: "s", Body: body}); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			cancel()
			<-done
			sub.Close()
		})
	}
}

func TestHealth(t *testing.T) {
	pub := mem.NewPublisher(mem.Config{Broker: mem.NewBroker()})
	if h := pub.Health(); h.State != bus.HealthLive {
		t.Fatalf("publisher: %+v", h)
	}
	_ = pub.Close()
	if h := pub.Health(); h.State != bus.HealthClosed {
		t.Fatalf("closed publisher: %+v", h)
	}
	sub := mem.NewSubscriber(mem.Config{Broker: mem.NewBroker()})
	if h := sub.Health(); h.State != bus.HealthLive || !h.Healthy(0) {
		t.Fatalf("open: %+v", h)
	}
	_ = sub.Close()
	if h := sub.Health(); h.State != bus.HealthClosed || h.Healthy(time.Hour) {
		t.Fatalf("closed: %+v", h)
	}
}
