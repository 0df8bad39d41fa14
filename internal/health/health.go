// Package health tracks the bus.Health of publishers and of each running
// subscription, for the adapters' Health methods.
package health

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/busline/bus"
)

// Tracker is one subscription's (or one publisher's) state.
type Tracker struct {
	mu         sync.Mutex
	h          bus.Health
	reconnects *atomic.Uint64 // its own, or its set's
	down       atomic.Bool    // set by Observe: the last call could not reach the broker
}

// Observe records the outcome of a call to the broker, for a publisher
// that learns of a lost broker only from its calls: an error wrapping
// bus.ErrUnreachable means reconnecting, a success after one means live
// again, other errors say nothing. A success while live costs one atomic
// load.
func (t *Tracker) Observe(err error) {
	switch {
	case err == nil:
		if t.down.Load() && t.down.CompareAndSwap(true, false) {
			t.Live()
		}
	case errors.Is(err, bus.ErrUnreachable):
		t.down.Store(true)
		t.Reconnecting(err)
	}
}

// NewTracker returns a tracker in state s since now.
func NewTracker(s bus.HealthState) *Tracker {
	return &Tracker{h: bus.Health{State: s, Since: time.Now()}, reconnects: new(atomic.Uint64)}
}

// Live records that the connection is live.
func (t *Tracker) Live() { t.set(bus.HealthLive, nil) }

// Reconnecting records that the connection was lost because of err. A
// tracker already reconnecting keeps its Since and takes the newer err.
func (t *Tracker) Reconnecting(err error) { t.set(bus.HealthReconnecting, err) }

// Closed records that the owner was closed.
func (t *Tracker) Closed() { t.set(bus.HealthClosed, nil) }

func (t *Tracker) set(s bus.HealthState, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.h.State != s {
		if s == bus.HealthReconnecting {
			t.reconnects.Add(1)
		}
		t.h = bus.Health{State: s, Since: time.Now()}
	}
	if s == bus.HealthReconnecting {
		t.h.Err = err
	}
}

// Health returns the current state.
func (t *Tracker) Health() bus.Health {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.h
	h.Reconnects = t.reconnects.Load()
	return h
}

// Set is the trackers of a subscriber's running subscriptions.
type Set struct {
	mu         sync.Mutex
	m          map[*Tracker]struct{}
	closed     *Tracker
	reconnects atomic.Uint64 // of every tracker the set ever had
}

// Add returns a new tracker in the set, starting.
func (s *Set) Add() *Tracker {
	t := NewTracker(bus.HealthStarting)
	t.reconnects = &s.reconnects
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[*Tracker]struct{}{}
	}
	s.m[t] = struct{}{}
	return t
}

// Remove drops t, a subscription that ended.
func (s *Set) Remove(t *Tracker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, t)
}

// Close marks the whole set closed.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed == nil {
		s.closed = NewTracker(bus.HealthClosed)
	}
}

// Health is the least healthy state of the set: closed once Close was
// called; else the subscription reconnecting the longest; else one still
// starting; else live (also with no subscription at all).
func (s *Set) Health() bus.Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed != nil {
		h := s.closed.Health()
		h.Reconnects = s.reconnects.Load()
		return h
	}
	worst := bus.Health{State: bus.HealthLive}
	for t := range s.m {
		h := t.Health()
		switch {
		case h.State == bus.HealthReconnecting:
			if worst.State != bus.HealthReconnecting || h.Since.Before(worst.Since) {
				worst = h
			}
		case h.State == bus.HealthStarting && worst.State == bus.HealthLive:
			worst = h
		}
	}
	if worst.Since.IsZero() {
		worst.Since = time.Now()
	}
	worst.Reconnects = s.reconnects.Load()
	return worst
}
