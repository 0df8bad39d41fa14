package amqp_test

import (
	"testing"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/bustest"
)

// TestConformance runs the public suite against the real broker in every
// topology, and with quorum queues.
func TestConformance(t *testing.T) {
	for _, mode := range []struct{ name, query string }{
		{"exchange", ""},
		{"workqueue", "topology=workqueue"},
		{"exchange-quorum", "queue_type=quorum"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			cfg := mustConfig(t, mode.query)
			bustest.Run(t, bustest.Harness{
				NewPublisher:  func(t *testing.T) bus.Publisher { return newPublisher(t, cfg) },
				NewSubscriber: func(t *testing.T) bus.Subscriber { return newSubscriber(t, cfg) },
				NewTopic:      func(t *testing.T) string { return uniqueTopic(t) },
				Timeout:       60 * time.Second,
			})
		})
	}
}
