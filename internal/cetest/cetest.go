// Package cetest builds the CloudEvents Go SDK events that the adapters'
// interop tests send through busline and expect back. Tests import it;
// nothing else does.
package cetest

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Time is the event time of the interop tests, with nanoseconds.
var Time = time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)

// Event returns an event with every context attribute and a few
// extensions of several types (string, integer, the partition key), as an
// SDK producer would send it; more are added on top.
func Event(t testing.TB, more map[string]any) event.Event {
	t.Helper()
	e := event.New()
	e.SetID("sdk-1")
	e.SetSource("/sdk/producer")
	e.SetType("com.example.order.created")
	e.SetSubject("order-42")
	e.SetTime(Time)
	e.SetDataSchema("https://example.com/schemas/order.json")
	if err := e.SetData(event.ApplicationJSON, map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	e.SetExtension("tenant", "acme")
	e.SetExtension("region", "eu")
	e.SetExtension("count", 7)
	e.SetExtension("partitionkey", "customer-7")
	for k, v := range more {
		e.SetExtension(k, v)
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	return e
}
