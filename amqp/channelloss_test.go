package amqp_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/busline/bus"
)

// TestLostChannelCancelsHandlers: when a subscription's channel is lost,
// the handlers still running on its deliveries get their contexts
// cancelled (the broker has requeued those messages already), and a
// handler that ignores the cancellation does not hold the worker the next
// channel needs: the requeued message is handled again at once, flagged as
// redelivered. On the commit before the per-channel sessions, the handler
// context outlived the channel and, with Concurrency(1), the stuck handler
// kept the redelivery from ever running.
func TestLostChannelCancelsHandlers(t *testing.T) {
	px, sub := proxiedSubscriber(t, "")
	topic := uniqueTopic(t)

	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	var calls atomic.Int32
	cancelled := make(chan struct{})
	again := make(chan *bus.Message, 1)
	h := func(ctx context.Context, m *bus.Message) error {
		if calls.Add(1) == 1 {
			<-ctx.Done()
			close(cancelled)
			<-stuck // and then ignores it
			return nil
		}
		again <- m
		return nil
	}
	subscribe(t, sub, topic, h, bus.Group("g"))
	pub := newPublisher(t, mustConfig(t, "")) // straight to the broker
	if err := pub.Publish(ctxT(t), topic, &bus.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, testTimeout, "the first handler call", func() bool { return calls.Load() == 1 })
	px.cut()
	select {
	case <-cancelled:
	case <-time.After(testTimeout):
		t.Fatal("the handler's context outlived its lost channel")
	}
	select {
	case m := <-again:
		if !m.Delivery.Redelivered {
			t.Error("the requeued message is not flagged as redelivered")
		}
	case <-time.After(testTimeout):
		t.Fatal("the requeued message was not handled while the first handler ignores its cancellation")
	}
}
