package amqp_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
)

// TestExtensionsRoundTrip: metadata named like a CloudEvents extension
// travels as a cloudEvents_ header, the rest (the trace context headers
// included) as plain headers, and all of it comes back under the names it
// was sent with. An ID too long for the message_id property travels in
// its cloudEvents_id header.
func TestExtensionsRoundTrip(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "topology=workqueue")
	topic := uniqueTopic(t)
	pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
	got := newCollector()
	subscribe(t, sub, topic, got.handle, bus.Group(topic))
	md := map[string]string{
		"tenant": "acme", "dataschema": "https://example.com/order.json",
		"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "k=v",
		"trace-id": "x", "id": "plain id", "Region": "eu",
	}
	long := strings.Repeat("i", 300)
	if err := pub.Publish(ctxT(t), topic, &bus.Message{ID: long, Type: "order.created", Source: "/orders", Metadata: md, Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	got.waitFor(t, testTimeout, "the message", func() bool { return got.distinct() == 1 })
	m := got.msgs[0]
	if m.ID != long || m.Type != "order.created" || m.Source != "/orders" || !maps.Equal(m.Metadata, md) {
		t.Fatalf("received %+v", m)
	}
	var d amqp091.Delivery
	if !m.As(&d) {
		t.Fatal("no delivery")
	}
	for k, want := range map[string]string{
		"cloudEvents_tenant": "acme", "cloudEvents_dataschema": md["dataschema"], "cloudEvents_id": long,
		"traceparent": md["traceparent"], "tracestate": "k=v", "trace-id": "x", "id": "plain id", "Region": "eu",
	} {
		if d.Headers[k] != want {
			t.Errorf("header %s = %v, want %q", k, d.Headers[k], want)
		}
	}
	for _, k := range []string{"tenant", "dataschema", "cloudEvents_traceparent", "cloudEvents_region"} {
		if _, ok := d.Headers[k]; ok {
			t.Errorf("header %s present", k)
		}
	}
	if d.MessageId != "" || d.Type != "order.created" || d.AppId != "/orders" {
		t.Errorf("properties %q %q %q", d.MessageId, d.Type, d.AppId)
	}
}

// TestForeignExtensionArrivesAsMetadata: a cloudEvents_tenant header from a
// plain amqp091-go producer arrives as Metadata["tenant"], and a handler
// that forwards the message unchanged to another topic succeeds.
func TestForeignExtensionArrivesAsMetadata(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "topology=workqueue")
	topic, next := uniqueTopic(t), uniqueTopic(t)
	pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
	forwarded := make(chan error, 1)
	subscribe(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
		err := pub.Publish(ctx, next, m)
		forwarded <- err
		return err
	}, bus.Group(topic), bus.Retry(bus.NoRetry()))
	got := newCollector()
	subscribe(t, sub, next, got.handle, bus.Group(next))
	when := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if err := rawChannel(t).PublishWithContext(ctxT(t), "", topic, true, false, amqp091.Publishing{
		Headers: amqp091.Table{
			"cloudEvents_specversion": "1.0", "cloudEvents_id": "f-1", "cloudEvents_source": "/sdk",
			"cloudEvents_type": "com.example.sdk", "cloudEvents_time": when.Format(time.RFC3339),
			"cloudEvents_tenant": "acme", "cloudEvents_ce_odd": "x", "ce_tenant": "kafka style",
		},
		ContentType: "application/json", Body: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-forwarded:
		if err != nil {
			t.Fatalf("forwarding the received message unchanged: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("not received")
	}
	got.waitFor(t, testTimeout, "the forwarded message", func() bool { return got.distinct() == 1 })
	m := got.msgs[0]
	want := map[string]string{"tenant": "acme", "busline-foreign-cloudEvents_ce_odd": "x", "busline-foreign-ce_tenant": "kafka style"}
	if m.ID != "f-1" || m.Source != "/sdk" || m.Type != "com.example.sdk" || !m.Time.Equal(when) ||
		m.ContentType != "application/json" || !maps.Equal(m.Metadata, want) {
		t.Fatalf("forwarded message %+v, metadata want %v", m, want)
	}
}

// TestHostileHeadersDeadLetteredOnce: messages carrying headers busline
// would not publish as they are (a foreign extension, a Kafka-style ce_
// header, a prefixed header that is no extension name, a value that is not
// UTF-8) are each dead-lettered exactly once when their handler fails, not
// redelivered in a loop.
func TestHostileHeadersDeadLetteredOnce(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "topology=workqueue")
	topic := uniqueTopic(t)
	dlq := topic + bus.DeadLetterSuffix
	sub := newSubscriber(t, cfg)
	var mu sync.Mutex
	calls := map[string]int{}
	last := make(chan struct{})
	subscribe(t, sub, topic, func(_ context.Context, m *bus.Message) error {
		if m.ID == "last" {
			close(last)
			return nil
		}
		mu.Lock()
		calls[m.ID]++
		mu.Unlock()
		return errors.New("cannot handle")
	}, bus.Group(topic), bus.Retry(bus.NoRetry()))
	dead := newCollector()
	subscribe(t, sub, dlq, dead.handle, bus.Group(dlq))

	cases := map[string]struct {
		headers amqp091.Table
		want    map[string]string
	}{
		"h1": {amqp091.Table{"cloudEvents_tenant": "acme", "ce_tenant": "kafka style"},
			map[string]string{"tenant": "acme", "busline-foreign-ce_tenant": "kafka style"}},
		"h2": {amqp091.Table{"x-bin": []byte{'c', 'a', 'f', 0xe9}},
			map[string]string{"busline-foreign-base64-eC1iaW4": "Y2Fm6Q=="}},
		"h3": {amqp091.Table{"cloudEvents_Foo-Bar": "1", "content-type-x": "ok"},
			map[string]string{"busline-foreign-cloudEvents_Foo-Bar": "1", "content-type-x": "ok"}},
	}
	raw := rawChannel(t)
	for id, c := range cases {
		if err := raw.PublishWithContext(ctxT(t), "", topic, true, false, amqp091.Publishing{
			MessageId: id, Headers: c.headers, Body: []byte("body " + id)}); err != nil {
			t.Fatal(err)
		}
	}
	// One message after them, on a queue read one message at a time: a
	// hostile message requeued in a loop goes back before it, so once it
	// is handled every loop would have shown in the counts.
	if err := raw.PublishWithContext(ctxT(t), "", topic, true, false, amqp091.Publishing{MessageId: "last"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-last:
	case <-time.After(testTimeout):
		t.Fatal("the message after the hostile ones was not handled: a redelivery loop holds the queue")
	}
	dead.waitFor(t, 20*time.Second, "three dead letters", func() bool { return dead.distinct() == len(cases) })
	mu.Lock()
	defer mu.Unlock()
	dead.mu.Lock()
	defer dead.mu.Unlock()
	for _, m := range dead.msgs {
		c := cases[m.ID]
		if calls[m.ID] != 1 || dead.seen[m.ID] != 1 {
			t.Errorf("%s: handled %d times, dead-lettered %d times; want once each", m.ID, calls[m.ID], dead.seen[m.ID])
		}
		if string(m.Body) != "body "+m.ID || m.Metadata[bus.MetaDeadLetterError] != "cannot handle" {
			t.Errorf("%s: dead letter %+v", m.ID, m)
		}
		for k, v := range c.want {
			if m.Metadata[k] != v {
				t.Errorf("%s: metadata %q = %q, want %q", m.ID, k, m.Metadata[k], v)
			}
		}
	}
}
