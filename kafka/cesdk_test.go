package kafka

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkasarama "github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/cetest"
)

// The CloudEvents Go SDK and its Kafka binding are used here only, as the
// other side of the interop tests: they build and parse the records; the
// test moves them with kafka-go.

// sdkTime is the event time of the interop tests.
var sdkTime = cetest.Time

// sdkEvent is the SDK producer's event of the interop tests.
func sdkEvent(t *testing.T) event.Event {
	return cetest.Event(t, map[string]any{"averyveryverylongextension": "over 20 characters"})
}

// TestCloudEventsSDKToBusline: a record the SDK's Kafka binding wrote in
// binary mode arrives with every attribute, and each extension as metadata
// under its plain name (the partition key as Key).
func TestCloudEventsSDKToBusline(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 1)
	got := make(chan *bus.Message, 1)
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error { got <- m; return nil }, bus.Group("g"))

	e := sdkEvent(t)
	pm := &sarama.ProducerMessage{Topic: topic}
	if err := kafkasarama.WriteProducerMessage(context.Background(), binding.ToMessage(&e), pm); err != nil {
		t.Fatal(err)
	}
	km := kafkago.Message{}
	var err error
	if km.Key, err = pm.Key.Encode(); err != nil {
		t.Fatal(err)
	}
	if km.Value, err = pm.Value.Encode(); err != nil {
		t.Fatal(err)
	}
	for _, h := range pm.Headers {
		km.Headers = append(km.Headers, kafkago.Header{Key: string(h.Key), Value: h.Value})
	}
	writeRaw(t, cfg, topic, km)

	var m *bus.Message
	select {
	case m = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("not received")
	}
	want := map[string]string{"tenant": "acme", "region": "eu", "count": "7", "dataschema": e.DataSchema(),
		"averyveryverylongextension": "over 20 characters"}
	if m.ID != e.ID() || m.Source != e.Source() || m.Type != e.Type() || m.Subject != e.Subject() ||
		!m.Time.Equal(e.Time()) || m.ContentType != e.DataContentType() || m.Key != "customer-7" ||
		string(m.Body) != string(e.Data()) || !maps.Equal(m.Metadata, want) {
		t.Fatalf("received %+v\nfrom %s\nmetadata want %v", m, e, want)
	}
}

// TestBuslineToCloudEventsSDK: the SDK's Kafka binding reads a record
// busline published as the same event: every attribute, each metadata
// entry named like an extension as an extension, and nothing else (the
// trace context and other metadata are plain headers).
func TestBuslineToCloudEventsSDK(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 1)
	got := make(chan *bus.Message, 1)
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error { got <- m; return nil }, bus.Group("g"))
	in := &bus.Message{ID: "bl-1", Type: "com.example.order.created", Source: "/busline", Subject: "order-42", Time: sdkTime,
		ContentType: "application/json", Key: "customer-7", Body: []byte(`{"n":1}`), Metadata: map[string]string{
			"tenant": "acme", "region": "eu", "dataschema": "https://example.com/schemas/order.json",
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "trace-id": "x", "id": "plain",
		}}
	if err := newTestPublisher(t, cfg).Publish(context.Background(), topic, in); err != nil {
		t.Fatal(err)
	}
	var km kafkago.Message
	select {
	case m := <-got:
		if !m.As(&km) {
			t.Fatal("no record")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("not received")
	}
	cm := &sarama.ConsumerMessage{Topic: km.Topic, Partition: int32(km.Partition), Offset: km.Offset, Key: km.Key, Value: km.Value}
	for _, h := range km.Headers {
		cm.Headers = append(cm.Headers, &sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	e, err := binding.ToEvent(context.Background(), kafkasarama.NewMessageFromConsumerMessage(cm))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("the SDK finds the event invalid: %v", err)
	}
	if e.SpecVersion() != "1.0" || e.ID() != in.ID || e.Source() != in.Source || e.Type() != in.Type || e.Subject() != in.Subject ||
		!e.Time().Equal(in.Time) || e.DataContentType() != in.ContentType || e.DataSchema() != in.Metadata["dataschema"] ||
		string(e.Data()) != string(in.Body) || string(cm.Key) != in.Key {
		t.Fatalf("the SDK read %s", e)
	}
	ext := map[string]string{}
	for k, v := range e.Extensions() {
		switch k {
		case "kafkaoffset", "kafkapartition", "kafkatopic": // the binding's own, from the record's position
			continue
		}
		s, ok := v.(string)
		if !ok {
			t.Errorf("extension %s = %#v", k, v)
		}
		ext[k] = s
	}
	if want := map[string]string{"tenant": "acme", "region": "eu"}; !maps.Equal(ext, want) {
		t.Fatalf("extensions %v, want %v", ext, want)
	}
}
