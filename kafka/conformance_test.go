package kafka

import (
	"testing"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/bustest"
)

func TestConformance(t *testing.T) {
	cfg := testConfig(brokers(t))
	bustest.Run(t, bustest.Harness{
		NewPublisher:  func(t *testing.T) bus.Publisher { return newTestPublisher(t, cfg) },
		NewSubscriber: func(t *testing.T) bus.Subscriber { return newTestSubscriber(t, cfg) },
		NewTopic:      func(t *testing.T) string { return newTopic(t, cfg, testPartitions) },
		Timeout:       60 * time.Second,
		LoadMessages:  5000,
	})
}
