package amqp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
)

// TestBroadcastQueueIsDurable: a broadcast subscriber's queue is durable,
// not exclusive, not auto-delete, and expires (x-expires): RabbitMQ 4.3
// refuses transient non-exclusive queues by default, and an exclusive one
// would go with the connection and lose what is published during a
// reconnect. (TestBroadcastKeepsMessagesAcrossReconnect and
// TestBroadcastQueueExpiresWithoutItsSubscriber show the rest.)
func TestBroadcastQueueIsDurable(t *testing.T) {
	t.Parallel()
	topic := uniqueTopic(t)
	sub := newSubscriber(t, mustConfig(t, "broadcast_expires=7s"))
	subscribe(t, sub, topic, newCollector().handle)
	var line string
	for _, l := range strings.Split(rabbitmqctlOut(t, "list_queues", "name", "durable", "auto_delete", "exclusive", "arguments"), "\n") {
		if strings.HasPrefix(l, topic+".broadcast.") {
			line = l
		}
	}
	f := strings.Fields(line)
	if len(f) < 4 {
		t.Fatalf("no broadcast queue listed for %s", topic)
	}
	if f[1] != "true" || f[2] != "false" || f[3] != "false" || !strings.Contains(line, `{"x-expires",7000}`) {
		t.Fatalf("broadcast queue is not durable, shared and expiring (name durable auto_delete exclusive arguments):\n%s", line)
	}
}

// TestQueueNamesNeverCollide: in exchange mode every queue name belongs to
// one topic and one group (or one broadcast subscription, or one dead
// letter topic). A subscription whose queue would also be another one's
// is refused with bus.ErrInvalid before anything is declared, and the
// other subscription's queue gets nothing from the refused one's topic.
func TestQueueNamesNeverCollide(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "")
	pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
	noop := func(context.Context, *bus.Message) error { return nil }
	// derived is a topic made from base that is cleaned up like base.
	derived := func(t *testing.T, base, suffix string) string {
		t.Cleanup(func() { deleteTopic(t, base+suffix) })
		return base + suffix
	}
	// unroutable checks that nothing is bound to topic's exchange.
	unroutable := func(t *testing.T, topic string) {
		t.Helper()
		if err := pub.Publish(ctxT(t), topic, &bus.Message{Body: []byte("x")}); !errors.Is(err, bus.ErrUnroutable) {
			t.Fatalf("publish to %q: %v; want bus.ErrUnroutable (no queue bound)", topic, err)
		}
	}

	t.Run("group dlq would read the dead letter queue", func(t *testing.T) {
		topic := uniqueTopic(t)
		refused(t, sub, topic, "dead letter", bus.Group("dlq"))
		unroutable(t, topic)
	})
	t.Run("group with a dot would share another topic's group queue", func(t *testing.T) {
		topic := uniqueTopic(t)
		other := derived(t, topic, ".x")
		c := newCollector()
		subscribe(t, sub, other, c.handle, bus.Group("g")) // queue <topic>.x.g
		refused(t, sub, topic, `"."`, bus.Group("x.g"))
		unroutable(t, topic)
		if n := c.distinct(); n != 0 {
			t.Fatalf("group g of %q got %d messages published to %q", other, n, topic)
		}
	})
	t.Run("dotted topic as its own group would read another topic's group queue", func(t *testing.T) {
		topic := uniqueTopic(t)
		subscribe(t, sub, topic, noop, bus.Group("g")) // queue <topic>.g
		dotted := derived(t, topic, ".g")
		refused(t, sub, dotted, "also the queue of group", bus.Group(dotted))
		unroutable(t, dotted)
	})
	t.Run("dead letter topic named like a group queue", func(t *testing.T) {
		topic := uniqueTopic(t)
		dl := derived(t, topic, ".g")
		refused(t, sub, topic, "dead letter", bus.Group("g1"), bus.DeadLetter(dl))
		if queueExists(t, dl) {
			t.Fatalf("queue %q declared by a refused subscription", dl)
		}
	})
	t.Run("group named like a broadcast queue", func(t *testing.T) {
		topic := uniqueTopic(t)
		subscribe(t, sub, topic, noop) // queue <topic>.broadcast.<id>
		var id string
		for _, l := range strings.Split(rabbitmqctlOut(t, "list_queues", "name"), "\n") {
			if after, ok := strings.CutPrefix(strings.TrimSpace(l), topic+".broadcast."); ok {
				id = after
			}
		}
		if id == "" {
			t.Fatal("no broadcast queue")
		}
		bt := derived(t, topic, ".broadcast")
		t.Cleanup(func() { deleteQueue(t, bt+"."+id) })
		refused(t, sub, bt, "broadcast subscriber", bus.Group(id))
		unroutable(t, bt)
	})
	t.Run("plain names keep their queues", func(t *testing.T) {
		topic := uniqueTopic(t)
		subscribe(t, sub, topic, noop, bus.Group("workers"))
		subscribe(t, sub, topic, noop, bus.Group(topic))
		dl := topic + bus.DeadLetterSuffix
		subscribe(t, sub, dl, noop, bus.Group(dl))
		for _, q := range []string{topic + ".workers", topic, dl} {
			if !queueExists(t, q) {
				t.Fatalf("no queue %q", q)
			}
		}
	})
}

// refused checks that Subscribe(topic) with opts fails at once with
// bus.ErrInvalid and an error that mentions mention.
func refused(t *testing.T, sub bus.Subscriber, topic, mention string, opts ...bus.SubscribeOption) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- sub.Subscribe(ctx, topic, func(context.Context, *bus.Message) error { return nil },
			append(opts, bus.OnReady(func() { close(ready) }))...)
	}()
	select {
	case err := <-done:
		if !errors.Is(err, bus.ErrInvalid) || !strings.Contains(err.Error(), mention) {
			t.Fatalf("Subscribe(%q): %v; want bus.ErrInvalid mentioning %s", topic, err, mention)
		}
	case <-ready:
		cancel()
		<-done
		t.Fatalf("Subscribe(%q) was accepted; its queue is also another subscription's", topic)
	}
}

// queueExists reports whether the broker has a queue named q.
func queueExists(t *testing.T, q string) bool {
	t.Helper()
	for _, l := range strings.Split(rabbitmqctlOut(t, "list_queues", "name"), "\n") {
		if strings.TrimSpace(l) == q {
			return true
		}
	}
	return false
}

// deleteQueue deletes the queue q, if it exists.
func deleteQueue(t *testing.T, q string) {
	c, err := amqp091.Dial(brokerURL)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer c.Close()
	if ch, err := c.Channel(); err == nil {
		_, _ = ch.QueueDelete(q, false, false, false)
	}
}
