package middleware

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/busline/bus"
)

// ErrTimeout is the error of an attempt that Timeout cut short.
var ErrTimeout = errors.New("middleware: handler timed out")

// Timeout bounds each attempt of the handler to d: its context ends after
// d, and an attempt that returns an error once d has passed returns one
// wrapping ErrTimeout instead. Such an attempt counts as failed: it is
// retried under the subscription's RetryPolicy, then dead-lettered.
// A handler that ignores its context is not stopped; Timeout only tells
// it, and reports the failure once it returns. It panics when d is not
// positive.
func Timeout(d time.Duration) bus.Middleware {
	if d <= 0 {
		panic(fmt.Sprintf("middleware: Timeout(%v): the timeout must be positive", d))
	}
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, m *bus.Message) error {
			tctx, cancel := context.WithTimeoutCause(ctx, d, ErrTimeout)
			defer cancel()
			err := next(tctx, m)
			if err != nil && ctx.Err() == nil && errors.Is(context.Cause(tctx), ErrTimeout) {
				return fmt.Errorf("%w after %v: %w", ErrTimeout, d, err)
			}
			return err
		}
	}
}
