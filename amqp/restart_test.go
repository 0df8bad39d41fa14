//go:build brokerrestart

package amqp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
)

// waitBroker waits until the broker accepts AMQP connections again.
func waitBroker(t *testing.T) {
	t.Helper()
	waitUntil(t, 2*time.Minute, "the broker to answer", func() bool {
		c, err := amqp091.Dial(brokerURL)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// TestBrokerRestart restarts the shared broker (rabbitmqctl stop_app and
// start_app) while persistent messages wait in a durable queue and a
// subscriber is running: the messages survive, and the subscriber and the
// publisher carry on by themselves.
func TestBrokerRestart(t *testing.T) {
	for _, q := range []string{"topology=workqueue", "queue_type=quorum"} {
		t.Run(q, func(t *testing.T) { testRestart(t, q) })
	}
}

func testRestart(t *testing.T, query string) {
	cfg := mustConfig(t, query+"&reconnect_min=100ms&reconnect_max=1s")
	topic := uniqueTopic(t)
	group := "restart"
	if cfg.Topology == "workqueue" {
		group = topic
	}
	pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
	gate := make(chan struct{})
	c := newCollector()
	subscribe(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
		select {
		case <-gate:
		case <-time.After(testTimeout):
		}
		return c.handle(ctx, m)
	}, bus.Group(group))

	const before, after = 200, 20
	if err := pub.Publish(ctxT(t), topic, msgs(before, "before")...); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	restart := func() { rabbitmqctl(t, "start_app"); waitBroker(t) }
	t.Cleanup(func() { once.Do(restart) }) // never leave the broker stopped
	rabbitmqctl(t, "stop_app")
	close(gate)
	once.Do(restart)

	c.waitFor(t, 2*time.Minute, "the messages published before the restart", func() bool { return c.distinct() >= before })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pub.Publish(ctx, topic, msgs(after, "after")...); err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
	c.waitFor(t, 2*time.Minute, "the messages published after the restart", func() bool { return c.distinct() == before+after })
}
