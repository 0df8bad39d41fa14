package amqp_test

import (
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
)

// TestInteropWorkQueue exchanges messages with a plain client that follows
// the classic work-queue pattern: a durable queue, persistent messages,
// prefetch 1 and manual acks, in both directions.
func TestInteropWorkQueue(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "topology=workqueue")
	const n = 20

	t.Run("plain producer to busline consumer", func(t *testing.T) {
		queue := uniqueTopic(t) // a task_queue of this test's own
		ch := rawChannel(t)
		if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			body := fmt.Sprintf("Hello World %d...", i)
			if err := ch.PublishWithContext(ctxT(t), "", queue, false, false, amqp091.Publishing{
				DeliveryMode: amqp091.Persistent, Body: []byte(body)}); err != nil {
				t.Fatal(err)
			}
		}
		c := newCollector()
		subscribe(t, newSubscriber(t, cfg), queue, c.handle, bus.Group(queue))
		c.waitFor(t, testTimeout, "all plain messages", func() bool { return c.distinct() == n })
		bodies := map[string]bool{}
		for _, m := range c.msgs {
			bodies[string(m.Body)] = true
			if m.ID == "" || len(m.Metadata) != 0 || m.Delivery.Redelivered {
				t.Fatalf("plain message decoded as %+v", m)
			}
		}
		for i := range n {
			if !bodies[fmt.Sprintf("Hello World %d...", i)] {
				t.Fatalf("body %d missing or changed: %v", i, bodies)
			}
		}
		// Everything was acked.
		waitUntil(t, testTimeout, "queue empty", func() bool {
			q, err := rawChannel(t).QueueDeclarePassive(queue, true, false, false, false, nil)
			return err == nil && q.Messages == 0
		})
	})

	t.Run("busline producer to plain consumer", func(t *testing.T) {
		queue := uniqueTopic(t)
		pub := newPublisher(t, cfg)
		in := msgs(n, "task")
		if err := pub.Publish(ctxT(t), queue, in...); err != nil {
			t.Fatal(err)
		}
		ch := rawChannel(t)
		// The consumer asserts the queue exactly as the plain program does.
		if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.Qos(1, 0, false); err != nil {
			t.Fatal(err)
		}
		deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			select {
			case d := <-deliveries:
				if string(d.Body) != fmt.Sprintf("task-%d", i) || d.DeliveryMode != amqp091.Persistent || d.MessageId != in[i].ID {
					t.Fatalf("delivery %d: body %q mode %d id %q", i, d.Body, d.DeliveryMode, d.MessageId)
				}
				if err := d.Ack(false); err != nil {
					t.Fatal(err)
				}
			case <-time.After(testTimeout):
				t.Fatalf("plain consumer got %d of %d", i, n)
			}
		}
	})
}
