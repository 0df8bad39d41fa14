package bus

import (
	"context"
	"fmt"
)

// Middleware wraps a Handler with behaviour that cuts across handlers:
// timeouts, rate limits, logging, tracing, deduplication.
//
// Middleware runs inside the retry pipeline: it sees every attempt of a
// message (Message.Delivery.Attempt tells which), and what it returns is
// that attempt's outcome — nil acks, an error is retried under the
// subscription's RetryPolicy and then dead-lettered, an error wrapped with
// Permanent is dead-lettered at once. A panic in a middleware, as in the
// handler, is turned into a *PanicError. Package
// github.com/busline/bus/middleware has the common ones.
type Middleware func(Handler) Handler

// Use adds middleware to a subscription. Middleware given first runs
// first (outermost); middleware added to the whole Subscriber with
// UseSubscriber runs before all of the subscription's own.
func Use(mw ...Middleware) SubscribeOption {
	return func(c *subscribeOptions) { c.Middleware = append(c.Middleware, mw...) }
}

// PublishFunc is the signature of Publisher.Publish.
type PublishFunc func(ctx context.Context, topic string, msgs ...*Message) error

// PublishMiddleware wraps a publish: to inject metadata, validate
// messages, trace or measure. It may change the messages (their metadata,
// say) before calling next, and must call next at most once.
type PublishMiddleware func(next PublishFunc) PublishFunc

// UseSubscriber returns a Subscriber that runs mw around the handler of
// every subscription it starts, before (outside) each subscription's own
// Use middleware. Close, Shutdown, Capabilities and As reach s.
func UseSubscriber(s Subscriber, mw ...Middleware) Subscriber {
	return &middlewareSubscriber{Subscriber: s, mw: mw}
}

type middlewareSubscriber struct {
	Subscriber
	mw []Middleware
}

func (m *middlewareSubscriber) Subscribe(ctx context.Context, topic string, h Handler, opts ...SubscribeOption) error {
	return m.Subscriber.Subscribe(ctx, topic, h, append([]SubscribeOption{Use(m.mw...)}, opts...)...)
}

// Shutdown shuts the wrapped Subscriber down, bounded by ctx when it
// implements Shutdowner.
func (m *middlewareSubscriber) Shutdown(ctx context.Context) error {
	return Shutdown(ctx, m.Subscriber)
}

// Capabilities reports the wrapped Subscriber's capabilities (the zero
// value when it reports none).
func (m *middlewareSubscriber) Capabilities() Capabilities { return capabilitiesOf(m.Subscriber) }

// As reaches the wrapped Subscriber's native client.
func (m *middlewareSubscriber) As(target any) bool { return asOf(m.Subscriber, target) }

// UsePublisher returns a Publisher whose Publish runs through mw, the
// first outermost. Close, Shutdown, Capabilities and As reach p; when p
// implements ReceiverCounter, so does the result, its PublishCount going
// through mw too.
func UsePublisher(p Publisher, mw ...PublishMiddleware) Publisher {
	mp := &middlewarePublisher{Publisher: p}
	mp.publish = chainPublish(p.Publish, mw)
	if rc, ok := p.(ReceiverCounter); ok {
		cp := &countingPublisher{middlewarePublisher: mp, rc: rc, mw: mw}
		return cp
	}
	return mp
}

func chainPublish(f PublishFunc, mw []PublishMiddleware) PublishFunc {
	for i := len(mw) - 1; i >= 0; i-- {
		f = mw[i](f)
	}
	return f
}

type middlewarePublisher struct {
	Publisher
	publish PublishFunc
}

func (m *middlewarePublisher) Publish(ctx context.Context, topic string, msgs ...*Message) error {
	return m.publish(ctx, topic, msgs...)
}

// Shutdown shuts the wrapped Publisher down, bounded by ctx when it
// implements Shutdowner.
func (m *middlewarePublisher) Shutdown(ctx context.Context) error { return Shutdown(ctx, m.Publisher) }

// Capabilities reports the wrapped Publisher's capabilities (the zero
// value when it reports none).
func (m *middlewarePublisher) Capabilities() Capabilities { return capabilitiesOf(m.Publisher) }

// As reaches the wrapped Publisher's native client.
func (m *middlewarePublisher) As(target any) bool { return asOf(m.Publisher, target) }

type countingPublisher struct {
	*middlewarePublisher
	rc ReceiverCounter
	mw []PublishMiddleware
}

// PublishCount publishes msg through the middleware and returns the
// wrapped publisher's count.
func (c *countingPublisher) PublishCount(ctx context.Context, topic string, msg *Message) (int, error) {
	var n int
	last := func(ctx context.Context, topic string, msgs ...*Message) error {
		if len(msgs) != 1 {
			return fmt.Errorf("%w: PublishCount middleware passed %d messages, want 1", ErrInvalid, len(msgs))
		}
		var err error
		n, err = c.rc.PublishCount(ctx, topic, msgs[0])
		return err
	}
	err := chainPublish(last, c.mw)(ctx, topic, msg)
	return n, err
}

func capabilitiesOf(v any) Capabilities {
	if cr, ok := v.(CapabilityReporter); ok {
		return cr.Capabilities()
	}
	return Capabilities{}
}

func asOf(v, target any) bool {
	if a, ok := v.(Aser); ok {
		return a.As(target)
	}
	return false
}
