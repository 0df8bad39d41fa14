package amqp

import (
	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/opener"
)

func init() {
	o := opener.Funcs[Config, *Publisher, *Subscriber]{Parse: parseURL, NewPublisher: NewPublisher, NewSubscriber: NewSubscriber}
	driver.Register(Scheme, o)
	driver.Register(SchemeTLS, o)
}

// Interface checks.
var (
	_ bus.Publisher          = (*Publisher)(nil)
	_ bus.Shutdowner         = (*Publisher)(nil)
	_ bus.CapabilityReporter = (*Publisher)(nil)
	_ bus.Aser               = (*Publisher)(nil)
	_ bus.Subscriber         = (*Subscriber)(nil)
	_ bus.Shutdowner         = (*Subscriber)(nil)
	_ bus.CapabilityReporter = (*Subscriber)(nil)
	_ bus.Aser               = (*Subscriber)(nil)
)
