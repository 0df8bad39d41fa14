package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/mem"
)

// Start returns once the subscription is live: a message published right
// after it is received; Stop ends it and returns Subscribe's nil.
func TestStartIsLiveOnReturn(t *testing.T) {
	b := mem.NewBroker()
	sub := mem.NewSubscriber(mem.Config{Broker: b})
	defer sub.Close()
	got := make(chan *bus.Message, 1)
	userReady := false
	r, err := bus.Start(context.Background(), sub, "orders", func(_ context.Context, m *bus.Message) error {
		got <- m
		return nil
	}, bus.OnReady(func() { userReady = true }))
	if err != nil {
		t.Fatal(err)
	}
	if !userReady {
		t.Error("the caller's OnReady was not called")
	}
	if err := mem.NewPublisher(mem.Config{Broker: b}).Publish(context.Background(), "orders", &bus.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("message published after Start returned was not received")
	}
	if r.Err() != nil {
		t.Fatalf("Err before the end = %v", r.Err())
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
}

// Start returns the error that kept the subscription from going live.
func TestStartReturnsWhyNotLive(t *testing.T) {
	sub := mem.NewSubscriber(mem.Config{Broker: mem.NewBroker()})
	h := func(context.Context, *bus.Message) error { return nil }
	if r, err := bus.Start(context.Background(), sub, "", h); !errors.Is(err, bus.ErrInvalid) || r != nil {
		t.Fatalf("empty topic: %v, %v", r, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bus.Start(ctx, sub, "t", h); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended ctx: %v", err)
	}
	_ = sub.Close()
	if _, err := bus.Start(context.Background(), sub, "t", h); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
