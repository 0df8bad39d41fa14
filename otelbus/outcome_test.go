package otelbus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/otelbus"
)

// The middleware's outcome follows the pipeline's rules, attempt by
// attempt, for a policy of 3 attempts: a RetryAfter attempt does not
// count against it, a cancelled context abandons, a panic is a failure
// that goes on to the pipeline with its own value.
func TestOutcomes(t *testing.T) {
	h := newHarness(t, otelbus.Retry(bus.RetryPolicy{MaxAttempts: 3}))
	var next error
	var panicWith any
	handle := h.o.Middleware()(func(context.Context, *bus.Message) error {
		if panicWith != nil {
			panic(panicWith)
		}
		return next
	})
	m := &bus.Message{ID: "m1", Delivery: bus.Delivery{Topic: "outcomes"}}
	fail := errors.New("down")
	steps := []struct {
		err     error
		panics  any
		cancel  bool
		outcome string
	}{
		{err: fail, outcome: otelbus.OutcomeRetry},                              // failure 1
		{err: bus.RetryAfter(fail, time.Second), outcome: otelbus.OutcomeRetry}, // not counted
		{panics: "boom", outcome: otelbus.OutcomeRetry},                         // failure 2
		{err: fail, outcome: otelbus.OutcomeDeadLetter},                         // failure 3: the last
		{err: nil, outcome: otelbus.OutcomeAck},                                 // (a new delivery)
		{err: fail, cancel: true, outcome: otelbus.OutcomeAbandon},              // cut short
		{err: bus.Permanent(fail), outcome: otelbus.OutcomeDeadLetter},          // at once
	}
	for i, s := range steps {
		m.Delivery.Attempt = i + 1
		if i >= 4 {
			m.Delivery.Attempt = 1
		}
		next, panicWith = s.err, s.panics
		ctx, cancel := context.WithCancel(context.Background())
		if s.cancel {
			cancel()
		}
		func() {
			defer func() {
				if v := recover(); v != s.panics {
					t.Errorf("step %d: panic %v, want %v", i, v, s.panics)
				}
			}()
			_ = handle(ctx, m)
		}()
		cancel()
		spans := h.spans("process outcomes")
		if len(spans) != i+1 {
			t.Fatalf("step %d: %d spans", i, len(spans))
		}
		if got := attr(spans[i], otelbus.OutcomeKey).AsString(); got != s.outcome {
			t.Errorf("step %d: outcome %q, want %q", i, got, s.outcome)
		}
		if s.panics != nil {
			if got := attr(spans[i], "error.type").AsString(); got != "panic" {
				t.Errorf("step %d: error.type %q, want panic", i, got)
			}
		}
	}
	if n := sum(t, h.collect(t)[otelbus.MetricActive]); n != 0 {
		t.Errorf("active %d after every attempt ended, want 0", n)
	}
}
