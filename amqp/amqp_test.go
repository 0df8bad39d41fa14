package amqp_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		group       func(topic string) string
	}{
		{"exchange/broadcast", "", func(string) string { return "" }},
		{"exchange/group", "", func(string) string { return "g" }},
		{"exchange/quorum", "queue_type=quorum", func(string) string { return "g" }},
		{"workqueue", "topology=workqueue", func(topic string) string { return topic }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := mustConfig(t, tc.query)
			topic := uniqueTopic(t)
			pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
			got := make(chan *bus.Message, 1)
			var opts []bus.SubscribeOption
			if g := tc.group(topic); g != "" {
				opts = append(opts, bus.Group(g))
			}
			subscribe(t, sub, topic, func(_ context.Context, m *bus.Message) error {
				select {
				case got <- m:
				default:
				}
				return nil
			}, opts...)
			when := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
			in := &bus.Message{ID: "id-1", Type: "order.created", Source: "/orders", Subject: "o-42", Time: when,
				ContentType: "application/json", Key: "k1", Metadata: map[string]string{"trace": "abc"}, Body: []byte(`{"a":1}`)}
			if err := pub.Publish(ctxT(t), topic, in); err != nil {
				t.Fatal(err)
			}
			var m *bus.Message
			select {
			case m = <-got:
			case <-time.After(testTimeout):
				t.Fatal("no message")
			}
			if m.ID != in.ID || m.Type != in.Type || m.Source != in.Source || m.Subject != in.Subject ||
				!m.Time.Equal(when) || m.ContentType != in.ContentType || m.Key != in.Key ||
				m.Metadata["trace"] != "abc" || string(m.Body) != `{"a":1}` || len(m.Metadata) != 1 {
				t.Fatalf("round trip changed the message: %+v", m)
			}
			if m.Delivery.Topic != topic || m.Delivery.Attempt != 1 {
				t.Fatalf("delivery = %+v", m.Delivery)
			}
			var d amqp091.Delivery
			if !m.As(&d) || d.MessageId != "id-1" || d.DeliveryMode != amqp091.Persistent || d.AppId != "/orders" || d.Type != "order.created" {
				t.Fatalf("As(amqp091.Delivery) = %+v", d)
			}
		})
	}
}

func TestUnroutableIsAnError(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "")
	topic := uniqueTopic(t)
	pub := newPublisher(t, cfg)
	err := pub.Publish(ctxT(t), topic, msgs(3, "x")...)
	if !errors.Is(err, bus.ErrUnroutable) {
		t.Fatalf("publish with no queue: got %v, want ErrUnroutable", err)
	}
	// The channel survives: once a group exists, publishing works.
	sub := newSubscriber(t, cfg)
	c := newCollector()
	subscribe(t, sub, topic, c.handle, bus.Group("g"))
	if err := pub.Publish(ctxT(t), topic, msgs(5, "y")...); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, testTimeout, "5 messages", func() bool { return c.distinct() == 5 })
}

func TestWorkQueueGroupRules(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "topology=workqueue")
	sub := newSubscriber(t, cfg)
	topic := uniqueTopic(t)
	noop := func(context.Context, *bus.Message) error { return nil }
	err := sub.Subscribe(ctxT(t), topic, noop)
	if !errors.Is(err, bus.ErrUnsupported) || !strings.Contains(err.Error(), "bus.Group(") {
		t.Fatalf("no group: got %v", err)
	}
	err = sub.Subscribe(ctxT(t), topic, noop, bus.Group("other"))
	if !errors.Is(err, bus.ErrInvalid) {
		t.Fatalf("other group: got %v", err)
	}
	if c := sub.Capabilities(); !c.SingleGroup || c.Broadcast || !c.Groups {
		t.Fatalf("capabilities = %+v", c)
	}
}

func TestGroupsCompeteBroadcastCopies(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "")
	topic := uniqueTopic(t)
	pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
	g1, g2, b1, b2 := newCollector(), newCollector(), newCollector(), newCollector()
	subscribe(t, sub, topic, g1.handle, bus.Group("g"), bus.Concurrency(4))
	subscribe(t, sub, topic, g2.handle, bus.Group("g"), bus.Concurrency(4))
	subscribe(t, sub, topic, b1.handle)
	subscribe(t, sub, topic, b2.handle)
	const n = 200
	if err := pub.Publish(ctxT(t), topic, msgs(n, "m")...); err != nil {
		t.Fatal(err)
	}
	b1.waitFor(t, testTimeout, "broadcast 1", func() bool { return b1.distinct() == n })
	b2.waitFor(t, testTimeout, "broadcast 2", func() bool { return b2.distinct() == n })
	g1.waitFor(t, testTimeout, "group", func() bool { return g1.distinct()+g2.distinct() == n })
	if g1.distinct() == 0 || g2.distinct() == 0 {
		t.Fatalf("group members did not share: %d and %d", g1.distinct(), g2.distinct())
	}
	for id := range g1.seen {
		if g2.seen[id] > 0 {
			t.Fatalf("message %s reached both members of the group", id)
		}
	}
}

func TestRetryThenDeadLetter(t *testing.T) {
	for _, q := range []string{"", "topology=workqueue", "queue_type=quorum"} {
		t.Run("q="+q, func(t *testing.T) {
			t.Parallel()
			cfg := mustConfig(t, q)
			topic := uniqueTopic(t)
			dlq := topic + bus.DeadLetterSuffix
			pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
			group := "g"
			if cfg.Topology == amqp.TopologyWorkQueue {
				group = topic
			}
			var calls atomic.Int32
			subscribe(t, sub, topic, func(context.Context, *bus.Message) error {
				calls.Add(1)
				return errors.New("boom")
			}, bus.Group(group), bus.Retry(bus.RetryPolicy{MaxAttempts: 3}))
			dead := newCollector()
			// The dead letter topic's durable queue is its group named after it.
			subscribe(t, sub, dlq, dead.handle, bus.Group(dlq))
			if err := pub.Publish(ctxT(t), topic, &bus.Message{ID: "dl-1", Body: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			dead.waitFor(t, testTimeout, "dead letter", func() bool { return dead.distinct() == 1 })
			m := dead.msgs[0]
			if m.ID != "dl-1" || m.Metadata[bus.MetaDeadLetterError] != "boom" || m.Metadata[bus.MetaDeadLetterAttempts] != "3" ||
				m.Metadata[bus.MetaDeadLetterTopic] != topic || string(m.Body) != "x" {
				t.Fatalf("dead letter = %+v", m)
			}
			if n := calls.Load(); n != 3 {
				t.Fatalf("handler called %d times, want 3", n)
			}
		})
	}
}

func TestPoisonAndPlainMessages(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "topology=workqueue")
	topic := uniqueTopic(t)
	dlq := topic + bus.DeadLetterSuffix
	sub := newSubscriber(t, cfg)
	good := newCollector()
	subscribe(t, sub, topic, good.handle, bus.Group(topic))
	dead := newCollector()
	subscribe(t, sub, dlq, dead.handle, bus.Group(dlq))

	raw := rawChannel(t)
	// A plain message: none of our headers.
	if err := raw.PublishWithContext(ctxT(t), "", topic, true, false, amqp091.Publishing{Body: []byte("plain")}); err != nil {
		t.Fatal(err)
	}
	// A poison message: claims CloudEvents, but a bad version and time.
	if err := raw.PublishWithContext(ctxT(t), "", topic, true, false, amqp091.Publishing{
		Headers: amqp091.Table{"cloudEvents_specversion": "0.1", "cloudEvents_time": "yesterday"}, MessageId: "bad", Body: []byte("poison")}); err != nil {
		t.Fatal(err)
	}
	good.waitFor(t, testTimeout, "plain message", func() bool { return good.distinct() == 1 })
	dead.waitFor(t, testTimeout, "poison dead letter", func() bool { return dead.distinct() == 1 })
	if m := good.msgs[0]; string(m.Body) != "plain" || m.ID == "" {
		t.Fatalf("plain message = %+v", m)
	}
	if m := dead.msgs[0]; string(m.Body) != "poison" || !strings.Contains(m.Metadata[bus.MetaDeadLetterError], "malformed") {
		t.Fatalf("poison dead letter = %+v", m)
	}
}

func TestQuorumDeliveryCount(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "topology=workqueue&queue_type=quorum")
	topic := uniqueTopic(t)
	pub := newPublisher(t, cfg)
	if err := pub.Publish(ctxT(t), topic, &bus.Message{ID: "q1", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	// A plain consumer takes it and gives it back once.
	raw := rawChannel(t)
	d, ok, err := raw.Get(topic, false)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	sub := newSubscriber(t, cfg)
	c := newCollector()
	subscribe(t, sub, topic, c.handle, bus.Group(topic))
	c.waitFor(t, testTimeout, "redelivery", func() bool { return c.distinct() == 1 })
	m := c.msgs[0]
	if !m.Delivery.Redelivered || m.Delivery.DeliveryCount != 1 {
		t.Fatalf("delivery = %+v", m.Delivery)
	}
}

func TestCloseSemantics(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "")
	pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
	topic := uniqueTopic(t)
	slow := make(chan struct{})
	var handled atomic.Int32
	s := subscribe(t, sub, topic, func(context.Context, *bus.Message) error {
		<-slow
		handled.Add(1)
		return nil
	}, bus.Group("g"))
	if err := pub.Publish(ctxT(t), topic, msgs(1, "c")...); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() {
		// Let the handler start, then close while it runs.
		time.AfterFunc(200*time.Millisecond, func() { close(slow) })
		closed <- sub.Close()
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close did not return")
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("Subscribe after Close returned %v", err)
	}
	if handled.Load() != 1 {
		t.Fatalf("running handler was not drained")
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := sub.Subscribe(ctxT(t), topic, func(context.Context, *bus.Message) error { return nil }); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctxT(t), topic, msgs(1, "c")...); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	// The handled message was acked: nothing is left in the group queue.
	raw := rawChannel(t)
	q, err := raw.QueueDeclarePassive(topic+".g", true, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Fatalf("group queue after close: %+v %v", q, err)
	}
}

func TestOpenByURL(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p, err := bus.OpenPublisher(ctx, brokerURL+"?topology=workqueue&heartbeat=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := bus.OpenSubscriber(ctx, brokerURL+"?topology=workqueue")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var c *amqp091.Connection
	if !p.(bus.Aser).As(&c) || c == nil {
		t.Fatal("As(*amqp091.Connection) failed")
	}
}

// rawChannel is a plain client channel for the test's own use.
func rawChannel(t testing.TB) *amqp091.Channel {
	t.Helper()
	c, err := amqp091.Dial(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}
