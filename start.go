package bus

import (
	"context"
	"errors"
	"sync"
)

// Running is a subscription started in the background by Start.
type Running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Subscribe's result, set before done is closed
}

// Start runs s.Subscribe(ctx, topic, h, opts...) on a goroutine of its own
// and returns once the subscription is live (OnReady), with a handle to
// stop it. When Subscribe returns before it is live, Start returns its
// error instead (a bad argument, an unreachable broker, ErrClosed, or
// ctx.Err() when ctx ended first), and nil. An OnReady among opts is
// still called.
//
// The subscription runs until ctx ends, the Subscriber is closed, or Stop.
func Start(ctx context.Context, s Subscriber, topic string, h Handler, opts ...SubscribeOption) (*Running, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	var once sync.Once
	opts = append(opts[:len(opts):len(opts)], func(c *subscribeOptions) {
		user := c.Ready
		c.Ready = func() {
			if user != nil {
				user()
			}
			once.Do(func() { close(ready) })
		}
	})
	go func() {
		defer close(r.done)
		r.err = s.Subscribe(ctx, topic, h, opts...)
	}()
	select {
	case <-ready:
		return r, nil
	case <-r.done:
		cancel()
		if r.err == nil {
			// Not a busline adapter's behaviour: every one returns an
			// error when it ends before it is live.
			r.err = errors.New("bus: subscription ended before it was live")
		}
		return nil, r.err
	}
}

// Stop ends the subscription and waits for Subscribe to return (bounded as
// Subscribe's drain is: see the package doc's Liveness), and returns what
// it returned: nil unless the subscription failed for good. It is safe to
// call more than once and from several goroutines.
func (r *Running) Stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// Done is closed when the subscription has ended, whatever ended it.
func (r *Running) Done() <-chan struct{} { return r.done }

// Err returns what Subscribe returned once Done is closed, and nil before.
func (r *Running) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}
