package bus

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Unlimited, as RetryPolicy.MaxAttempts, retries a failing message forever.
const Unlimited = -1

// RetryPolicy says how often, and how far apart, a message whose handler
// failed is handed to the handler again before it is dead-lettered.
//
// A policy given with Retry is used exactly as written: a zero
// MinBackoff means no wait between attempts. DefaultRetry applies only when
// no policy is given at all.
type RetryPolicy struct {
	// MaxAttempts is the total number of handler calls for one message,
	// the first included: 1 never retries, Unlimited retries forever.
	MaxAttempts int
	// MinBackoff is the wait before the first retry. Zero retries at once.
	MinBackoff time.Duration
	// MaxBackoff caps the wait between attempts. Zero means no cap.
	MaxBackoff time.Duration
	// Multiplier grows the wait after each attempt. Values below 1 count as 1.
	Multiplier float64
	// Jitter is the fraction (0 to 1) of each wait that is randomised, so
	// that many failing consumers do not retry in lock step.
	Jitter float64
}

// DefaultRetry returns the policy used when a subscription sets none: five
// attempts, waiting 100ms, 200ms, 400ms and 800ms (±20%) between them.
func DefaultRetry() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, MinBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second, Multiplier: 2, Jitter: 0.2}
}

// NoRetry is a policy that calls the handler once: a failure goes straight
// to the dead letter destination.
func NoRetry() RetryPolicy { return RetryPolicy{MaxAttempts: 1} }

// RetryForever is a policy that never gives up on a message. With backoff 0
// it retries immediately; otherwise the wait doubles from backoff up to max.
func RetryForever(backoff, max time.Duration) RetryPolicy {
	return RetryPolicy{MaxAttempts: Unlimited, MinBackoff: backoff, MaxBackoff: max, Multiplier: 2}
}

// Validate reports a policy that cannot be used.
func (p RetryPolicy) Validate() error {
	switch {
	case p.MaxAttempts == 0 || p.MaxAttempts < Unlimited:
		return fmt.Errorf("%w: retry MaxAttempts must be >= 1 or Unlimited, got %d", ErrInvalid, p.MaxAttempts)
	case p.MinBackoff < 0 || p.MaxBackoff < 0:
		return fmt.Errorf("%w: retry backoff must not be negative", ErrInvalid)
	case p.Jitter < 0 || p.Jitter > 1:
		return fmt.Errorf("%w: retry jitter must be within [0, 1], got %v", ErrInvalid, p.Jitter)
	}
	return nil
}

// ShouldRetry reports whether a message whose handler has failed attempt
// times may be tried again.
func (p RetryPolicy) ShouldRetry(attempt int) bool {
	return p.MaxAttempts == Unlimited || attempt < p.MaxAttempts
}

// Backoff returns the wait after the given failed attempt (1 for the first).
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	if p.MinBackoff <= 0 {
		return 0
	}
	mult := p.Multiplier
	if mult < 1 {
		mult = 1
	}
	d := float64(p.MinBackoff)
	for i := 1; i < attempt; i++ {
		d *= mult
		if p.MaxBackoff > 0 && d >= float64(p.MaxBackoff) {
			d = float64(p.MaxBackoff)
			break
		}
	}
	if p.MaxBackoff > 0 && d > float64(p.MaxBackoff) {
		d = float64(p.MaxBackoff)
	}
	if p.Jitter > 0 {
		d += d * p.Jitter * (2*rand.Float64() - 1)
	}
	return time.Duration(d)
}
