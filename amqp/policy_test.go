package amqp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/busline/bus"
)

// TestBrokerDeadLettersByPolicy: a message that no subscriber ever
// finishes (here each one is stopped mid-handler, as a crashing process
// would be) is redelivered; with a RabbitMQ policy giving the quorum queue
// a delivery limit and the topic's dead letter queue as its dead-letter
// target, the broker itself moves it there after the limit, where a
// dead letter subscription reads it intact. The policy matches only this
// test's queue.
func TestBrokerDeadLettersByPolicy(t *testing.T) {
	cfg := mustConfig(t, "topology=workqueue&queue_type=quorum")
	topic := uniqueTopic(t)
	dlq := topic + bus.DeadLetterSuffix
	policy := "busline-test-" + topic
	rabbitmqctl(t, "set_policy", "--apply-to", "queues", policy, "^"+topic+"$",
		fmt.Sprintf(`{"delivery-limit":1,"dead-letter-exchange":"","dead-letter-routing-key":%q}`, dlq))
	t.Cleanup(func() { rabbitmqctl(t, "clear_policy", policy) })

	pub := newPublisher(t, cfg)
	for round := 1; round <= 2; round++ {
		sub := newSubscriber(t, cfg)
		got := make(chan int, 1)
		subscribe(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
			got <- m.Delivery.DeliveryCount
			<-ctx.Done() // never finishes: the shutdown deadline cuts it off
			return ctx.Err()
		}, bus.Group(topic))
		if round == 1 {
			if err := pub.Publish(ctxT(t), topic, &bus.Message{ID: "crasher", Body: []byte("boom")}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case n := <-got:
			t.Logf("round %d: delivery count %d", round, n)
		case <-time.After(testTimeout):
			t.Fatalf("round %d: message not delivered", round)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_ = sub.Shutdown(ctx)
		cancel()
	}

	dead := newCollector()
	subscribe(t, newSubscriber(t, cfg), dlq, dead.handle, bus.Group(dlq))
	dead.waitFor(t, testTimeout, "the message the broker dead-lettered", func() bool { return dead.distinct() == 1 })
	if m := dead.msgs[0]; m.ID != "crasher" || string(m.Body) != "boom" {
		t.Fatalf("dead letter = %q %q", m.ID, m.Body)
	}
}
