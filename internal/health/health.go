// Package health tracks the bus.Health of publishers and of each running
// subscription, for the adapters' Health methods.
package health

import (
	"sync"
	"time"

	"github.com/busline/bus"
)

// Tracker is one subscription's (or one publisher's) state.
type Tracker struct {
	mu sync.Mutex
	h  bus.Health
}

// NewTracker returns a tracker in state s since now.
func NewTracker(s bus.HealthState) *Tracker {
	return &Tracker{h: bus.Health{State: s, Since: time.Now()}}
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
	return t.h
}

// Set is the trackers of a subscriber's running subscriptions.
type Set struct {
	mu     sync.Mutex
	m      map[*Tracker]struct{}
	closed *Tracker
}

// Add returns a new tracker in the set, starting.
func (s *Set) Add() *Tracker {
	t := NewTracker(bus.HealthStarting)
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
		return s.closed.Health()
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
	return worst
}
