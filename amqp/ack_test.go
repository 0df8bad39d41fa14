package amqp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/busline/bus"
)

// TestAcksAroundAnUnsettledMessage checks on the broker how the subscriber
// settles outcomes that arrive together: acks below every unsettled
// delivery share one multiple-ack, acks above one are sent each on its own,
// nacks go before them. A wrong multiple-ack would either ack a message
// whose handler has not finished (it would then be missing from the queue
// at the end) or name a tag already settled (the broker closes the channel
// and redelivers). Acks held back behind the unsettled message would fill
// the prefetch (16) and stop the deliveries behind it.
func TestAcksAroundAnUnsettledMessage(t *testing.T) {
	topic := uniqueTopic(t)
	cfg := mustConfig(t, "topology=workqueue")
	pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
	c := newCollector()
	retrying := make(chan struct{}, 1)
	h := func(ctx context.Context, m *bus.Message) error {
		if string(m.Body) == "fails" {
			select {
			case retrying <- struct{}{}:
			default:
			}
			return errors.New("always fails")
		}
		return c.handle(ctx, m)
	}
	s := subscribe(t, sub, topic, h, bus.Group(topic), bus.Concurrency(4),
		bus.Retry(bus.RetryForever(time.Hour, time.Hour)))
	ids := func(ms []*bus.Message) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.ID
		}
		return out
	}

	// No gap: handlers finishing together have their acks coalesced.
	first := msgs(500, "first")
	if err := pub.Publish(ctxT(t), topic, first...); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, testTimeout, "the first 500 messages", func() bool { return c.hasAll(ids(first)) })

	// A message that stays unsettled (its handler waits an hour to retry),
	// then more messages behind it than the prefetch holds.
	if err := pub.Publish(ctxT(t), topic, &bus.Message{Body: []byte("fails")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-retrying:
	case <-time.After(testTimeout):
		t.Fatal("the failing message was not delivered")
	}
	second := msgs(100, "second")
	if err := pub.Publish(ctxT(t), topic, second...); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, testTimeout, "the 100 messages behind the unsettled one", func() bool { return c.hasAll(ids(second)) })

	// Stopping abandons the failing message: nacked, requeued.
	if err := s.stop(t); err != nil {
		t.Fatalf("Subscribe returned %v", err)
	}
	c.mu.Lock()
	for id, n := range c.seen {
		if n != 1 {
			t.Errorf("message %s handled %d times", id, n)
		}
	}
	if len(c.redel) > 0 {
		t.Errorf("%d messages redelivered: the channel was closed under the subscriber", len(c.redel))
	}
	if len(c.seen) != len(first)+len(second) {
		t.Errorf("handled %d distinct messages, want %d", len(c.seen), len(first)+len(second))
	}
	c.mu.Unlock()

	// Only the failing message is left, ready for the next subscriber.
	ch := rawChannel(t)
	var ready int
	waitUntil(t, testTimeout, "the abandoned message back in the queue", func() bool {
		q, err := ch.QueueDeclarePassive(topic, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		ready = q.Messages
		return ready >= 1
	})
	if ready != 1 {
		t.Fatalf("queue holds %d messages, want just the abandoned one", ready)
	}
	d, ok, err := ch.Get(topic, true)
	if err != nil || !ok {
		t.Fatalf("get the left message: ok=%v, %v", ok, err)
	}
	if string(d.Body) != "fails" {
		t.Errorf("left message is %q, want the abandoned one", d.Body)
	}
}
