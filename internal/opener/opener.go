// Package opener turns an adapter's URL parser and constructors into the
// driver.Opener it registers, so that every adapter opens URLs the same way.
package opener

import (
	"context"
	"net/url"

	"github.com/busline/bus"
)

// Funcs is a driver.Opener made of an adapter's functions: Parse reads its
// Config from a URL, NewPublisher and NewSubscriber build from it.
type Funcs[C any, P bus.Publisher, S bus.Subscriber] struct {
	Parse         func(*url.URL) (C, error)
	NewPublisher  func(context.Context, C) (P, error)
	NewSubscriber func(context.Context, C) (S, error)
}

// OpenPublisher parses u and builds a publisher from it. On error the
// publisher is a nil interface, never a typed nil pointer.
func (f Funcs[C, P, S]) OpenPublisher(ctx context.Context, u *url.URL) (bus.Publisher, error) {
	cfg, err := f.Parse(u)
	if err != nil {
		return nil, err
	}
	p, err := f.NewPublisher(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// OpenSubscriber is OpenPublisher for subscribers.
func (f Funcs[C, P, S]) OpenSubscriber(ctx context.Context, u *url.URL) (bus.Subscriber, error) {
	cfg, err := f.Parse(u)
	if err != nil {
		return nil, err
	}
	s, err := f.NewSubscriber(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}
