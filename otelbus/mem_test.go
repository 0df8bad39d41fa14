package otelbus_test

import (
	"testing"

	"github.com/busline/bus/mem"
)

func TestTracesMem(t *testing.T) {
	b := mem.NewBroker()
	testTraces(t, newHarness(t), adapter{
		pub:      mem.NewPublisher(mem.Config{Broker: b}),
		sub:      mem.NewSubscriber(mem.Config{Broker: b}),
		newTopic: func(t *testing.T) string { return topicName(t) },
		system:   "busline",
	})
}
