package kafka

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

// rabbitURL is the RabbitMQ broker the forwarder tests use.
const rabbitURL = "amqp://guest:guest@127.0.0.1:5672/"

// rabbit opens a work-queue publisher and subscriber on the local RabbitMQ
// and returns them with a fresh queue name, deleted (with its dead letter
// queue) when the test ends.
func rabbit(t *testing.T) (*amqp.Publisher, *amqp.Subscriber, string) {
	t.Helper()
	cfg, err := amqp.ParseURL(rabbitURL + "?topology=workqueue")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := amqp.NewPublisher(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := amqp.NewSubscriber(ctx, cfg)
	if err != nil {
		_ = pub.Close()
		t.Fatal(err)
	}
	q := "bltest-kafka-" + sanitize(t.Name()) + "-" + uuid.NewString()[:8]
	t.Cleanup(func() {
		_ = sub.Close()
		_ = pub.Close()
		c, err := amqp091.Dial(rabbitURL)
		if err != nil {
			return
		}
		defer c.Close()
		for _, name := range []string{q, q + bus.DeadLetterSuffix} {
			if ch, err := c.Channel(); err == nil {
				_, _ = ch.QueueDelete(name, false, false, false)
				_ = ch.Close()
			}
		}
	})
	return pub, sub, q
}

// subscribeAny starts Subscribe on any subscriber and waits for OnReady.
func subscribeAny(t *testing.T, s bus.Subscriber, topic string, h bus.Handler, opts ...bus.SubscribeOption) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, topic, h, append(opts, bus.OnReady(func() { close(ready) }))...) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Subscribe(%q): %v", topic, err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("Subscribe(%q) not ready", topic)
	}
	t.Cleanup(func() { cancel(); <-done })
}

// forwarded waits for the forwarding handler's Publish result and for the
// message at the far end.
func forwarded(t *testing.T, errs <-chan error, got <-chan *bus.Message) *bus.Message {
	t.Helper()
	select {
	case err := <-errs:
		if err != nil {
			t.Fatalf("forwarding the received message unchanged: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("nothing received to forward")
	}
	select {
	case m := <-got:
		return m
	case <-time.After(60 * time.Second):
		t.Fatal("the forwarded message did not arrive")
		return nil
	}
}

// TestForwardKafkaToRabbitMQ: a handler that publishes a record received
// from Kafka unchanged to RabbitMQ succeeds, whatever headers the record
// carried (another CloudEvents producer's extensions, a RabbitMQ-style
// cloudEvents_ header, a non-UTF-8 value, an ID too long for an AMQP
// property), and what arrives keeps the event.
func TestForwardKafkaToRabbitMQ(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 1)
	pub, sub, q := rabbit(t)
	errs := make(chan error, 1)
	subscribe(t, newTestSubscriber(t, cfg), topic, func(ctx context.Context, m *bus.Message) error {
		err := pub.Publish(ctx, q, m)
		errs <- err
		return err
	}, bus.Group("fwd"), bus.Retry(bus.NoRetry()))
	got := make(chan *bus.Message, 1)
	subscribeAny(t, sub, q, func(_ context.Context, m *bus.Message) error { got <- m; return nil }, bus.Group(q))

	id := strings.Repeat("i", 300)
	writeRaw(t, cfg, topic, kafkago.Message{Key: []byte("k1"), Value: []byte(`{"n":1}`), Headers: ceHeaders(id,
		"ce_tenant", "acme", "ce_time", "2026-12-01T10:00:00.5Z", "content-type", "application/json",
		"cloudEvents_tenant", "amqp style", "x-bin", "\xff", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")})
	m := forwarded(t, errs, got)
	want := map[string]string{"tenant": "acme", "busline-foreign-cloudEvents_tenant": "amqp style",
		"busline-foreign-base64-eC1iaW4": "/w==", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	if m.ID != id || m.Source != "/sdk" || m.Type != "com.example.sdk" || m.Key != "k1" || m.ContentType != "application/json" ||
		!m.Time.Equal(time.Date(2026, 12, 1, 10, 0, 0, 5e8, time.UTC)) || string(m.Body) != `{"n":1}` || !maps.Equal(m.Metadata, want) {
		t.Fatalf("arrived as %+v, metadata want %v", m, want)
	}
}

// TestForwardRabbitMQToKafka: the same the other way round, with a
// Kafka-style ce_ header and a non-UTF-8 value on the RabbitMQ message.
func TestForwardRabbitMQToKafka(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 1)
	kpub := newTestPublisher(t, cfg)
	_, sub, q := rabbit(t)
	errs := make(chan error, 1)
	subscribeAny(t, sub, q, func(ctx context.Context, m *bus.Message) error {
		err := kpub.Publish(ctx, topic, m)
		errs <- err
		return err
	}, bus.Group(q), bus.Retry(bus.NoRetry()))
	got := make(chan *bus.Message, 1)
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error { got <- m; return nil }, bus.Group("g"))

	c, err := amqp091.Dial(rabbitURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(context.Background(), "", q, true, false, amqp091.Publishing{
		MessageId: "r-1", Type: "com.example.amqp", AppId: "/amqp", ContentType: "text/plain",
		Headers: amqp091.Table{"cloudEvents_tenant": "acme", "ce_tenant": "kafka style", "x-bin": []byte{0xff}, "x-n": int32(7)},
		Body:    []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	m := forwarded(t, errs, got)
	want := map[string]string{"tenant": "acme", "busline-foreign-ce_tenant": "kafka style", "busline-foreign-base64-eC1iaW4": "/w==", "x-n": "7"}
	if m.ID != "r-1" || m.Source != "/amqp" || m.Type != "com.example.amqp" || m.ContentType != "text/plain" ||
		string(m.Body) != "hello" || !maps.Equal(m.Metadata, want) {
		t.Fatalf("arrived as %+v, metadata want %v", m, want)
	}
	var km kafkago.Message
	if !m.As(&km) {
		t.Fatal("no record")
	}
	for _, h := range km.Headers {
		if h.Key == "tenant" || h.Key == "ce_tenant" && string(h.Value) != "acme" {
			t.Errorf("header %s=%q", h.Key, h.Value)
		}
	}
}
