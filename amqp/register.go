package amqp

import (
	"context"
	"net/url"

	"github.com/busline/bus"
)

func init() {
	bus.Register(Scheme, opener{})
	bus.Register(SchemeTLS, opener{})
}

// opener opens publishers and subscribers for bus.OpenPublisher and
// bus.OpenSubscriber.
type opener struct{}

func (opener) OpenPublisher(ctx context.Context, u *url.URL) (bus.Publisher, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return NewPublisher(ctx, cfg)
}

func (opener) OpenSubscriber(ctx context.Context, u *url.URL) (bus.Subscriber, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return NewSubscriber(ctx, cfg)
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
