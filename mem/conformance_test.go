package mem_test

import (
	"testing"

	"github.com/busline/bus"
	"github.com/busline/bus/bustest"
	"github.com/busline/bus/mem"
)

func TestConformance(t *testing.T) {
	b := mem.NewBroker()
	bustest.Run(t, bustest.Harness{
		NewPublisher:  func(t *testing.T) bus.Publisher { return mem.NewPublisher(mem.Config{Broker: b}) },
		NewSubscriber: func(t *testing.T) bus.Subscriber { return mem.NewSubscriber(mem.Config{Broker: b}) },
	})
}
