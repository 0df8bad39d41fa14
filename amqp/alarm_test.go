//go:build brokerrestart

package amqp_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/busline/bus"
)

// TestBrokerAlarmKeepsAcking raises a memory alarm on the shared broker
// while a subscription dead-letters a message: the dead letter publish
// waits for the alarm to clear, and meanwhile the subscription's acks,
// and with them its deliveries, keep flowing. (A connection that
// publishes during an alarm is no longer read by the broker, acks
// included.)
func TestBrokerAlarmKeepsAcking(t *testing.T) {
	cfg := mustConfig(t, "topology=workqueue")
	topic := uniqueTopic(t)
	pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
	const ok = 40
	poison := &bus.Message{ID: "poison", Body: []byte("poison")}
	if err := pub.Publish(ctxT(t), topic, append([]*bus.Message{poison}, msgs(ok, "ok")...)...); err != nil {
		t.Fatal(err)
	}

	restore := strings.TrimSpace(rabbitmqctlOut(t, "eval", "vm_memory_monitor:get_vm_memory_high_watermark()."))
	if _, err := strconv.ParseFloat(restore, 64); err != nil {
		restore = "0.4" // an absolute limit ({absolute, N}): put back the default
	}
	var once sync.Once
	clear := func() { once.Do(func() { rabbitmqctl(t, "set_vm_memory_high_watermark", restore) }) }
	// Deferred, not a Cleanup: it must run before the subscription's
	// cleanup, which waits for the blocked dead letter publish.
	defer clear()
	rabbitmqctl(t, "set_vm_memory_high_watermark", "0")

	var handled atomic.Int32
	dead := make(chan struct{})
	subscribe(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
		if m.ID == "poison" {
			defer close(dead)
			return bus.Permanent(errors.New("poison"))
		}
		handled.Add(1)
		return nil
	}, bus.Group(topic), bus.Concurrency(2))
	select {
	case <-dead:
	case <-time.After(testTimeout):
		t.Fatal("poison message not handled")
	}
	// A prefetch of 2 with one delivery stuck in its dead letter publish:
	// every other message needs the acks before it to reach the broker.
	waitUntil(t, 30*time.Second, "the other messages handled during the alarm", func() bool { return handled.Load() == ok })

	clear()
	dlq := topic + bus.DeadLetterSuffix
	c := newCollector()
	subscribe(t, sub, dlq, c.handle, bus.Group(dlq))
	c.waitFor(t, testTimeout, "the dead letter after the alarm cleared", func() bool { return c.distinct() == 1 })
}
