package redispubsub_test

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/cetest"
)

// The CloudEvents Go SDK is used here only, as the other side of the
// interop tests: it writes and reads structured mode JSON documents that
// the tests move with go-redis.

// sdkTime is the event time of the interop tests.
var sdkTime = cetest.Time

// sdkEvent is the SDK producer's event of the interop tests.
func sdkEvent(t *testing.T) event.Event { return cetest.Event(t, nil) }

// TestCloudEventsSDKToBusline: a structured mode document the SDK wrote
// arrives with every attribute, and each extension as metadata under its
// plain name (the partition key as Key).
func TestCloudEventsSDKToBusline(t *testing.T) {
	t.Parallel()
	topic := uniqueTopic(t)
	in := newInbox()
	start(t, newSubscriber(t, standaloneConfig()), topic, in.handler)
	e := sdkEvent(t)
	doc, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := rawClient(t).Publish(context.Background(), topic, doc).Err(); err != nil {
		t.Fatal(err)
	}
	m := in.wait(t, 1)[0]
	want := map[string]string{"tenant": "acme", "region": "eu", "count": "7", "dataschema": e.DataSchema()}
	if m.ID != e.ID() || m.Source != e.Source() || m.Type != e.Type() || m.Subject != e.Subject() ||
		!m.Time.Equal(e.Time()) || m.ContentType != e.DataContentType() || m.Key != "customer-7" ||
		string(m.Body) != string(e.Data()) || !maps.Equal(m.Metadata, want) {
		t.Fatalf("received %+v\nfrom %s\nmetadata want %v", m, doc, want)
	}
}

// TestBuslineToCloudEventsSDK: the SDK reads a document busline published
// as the same event: every attribute, the Key as the partitionkey
// extension, each metadata entry named like an extension (the trace
// context included: structured mode has no plain headers) as an extension,
// and the other metadata in the busmetadata extension.
func TestBuslineToCloudEventsSDK(t *testing.T) {
	t.Parallel()
	topic := uniqueTopic(t)
	ps := rawClient(t).Subscribe(context.Background(), topic)
	defer ps.Close()
	if _, err := ps.Receive(context.Background()); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	in := &bus.Message{ID: "bl-1", Type: "com.example.order.created", Source: "/busline", Subject: "order-42", Time: sdkTime,
		ContentType: "application/json", Key: "customer-7", Body: []byte(`{"n":1}`), Metadata: map[string]string{
			"tenant": "acme", "region": "eu", "dataschema": "https://example.com/schemas/order.json",
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "trace-id": "x", "id": "plain",
		}}
	if err := newPublisher(t, standaloneConfig()).Publish(context.Background(), topic, in); err != nil {
		t.Fatal(err)
	}
	var msg string
	select {
	case rm := <-ps.Channel():
		msg = rm.Payload
	case <-time.After(waitLimit):
		t.Fatal("not received")
	}
	var e event.Event
	if err := json.Unmarshal([]byte(msg), &e); err != nil {
		t.Fatalf("the SDK cannot read %s: %v", msg, err)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("the SDK finds the event invalid: %v", err)
	}
	if e.SpecVersion() != "1.0" || e.ID() != in.ID || e.Source() != in.Source || e.Type() != in.Type || e.Subject() != in.Subject ||
		!e.Time().Equal(in.Time) || e.DataContentType() != in.ContentType || e.DataSchema() != in.Metadata["dataschema"] ||
		string(e.Data()) != string(in.Body) {
		t.Fatalf("the SDK read %s", e)
	}
	ext := map[string]string{}
	for k, v := range e.Extensions() {
		s, ok := v.(string)
		if !ok {
			t.Errorf("extension %s = %#v", k, v)
		}
		ext[k] = s
	}
	want := map[string]string{"tenant": "acme", "region": "eu", "partitionkey": "customer-7",
		"traceparent": in.Metadata["traceparent"], "busmetadata": `{"id":"plain","trace-id":"x"}`}
	if !maps.Equal(ext, want) {
		t.Fatalf("extensions %v, want %v", ext, want)
	}
}
