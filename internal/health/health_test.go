package health

import (
	"errors"
	"testing"
	"time"

	"github.com/busline/bus"
)

// A set reports its least healthy subscription: the one reconnecting the
// longest, then one starting, else live; closed once closed.
func TestSetReportsTheWorst(t *testing.T) {
	var s Set
	if h := s.Health(); h.State != bus.HealthLive {
		t.Fatalf("empty set: %+v", h)
	}
	a, b, c := s.Add(), s.Add(), s.Add()
	a.Live()
	if h := s.Health(); h.State != bus.HealthStarting {
		t.Fatalf("with two starting: %+v", h)
	}
	b.Live()
	c.Live()
	if h := s.Health(); h.State != bus.HealthLive || !h.Healthy(0) {
		t.Fatalf("all live: %+v", h)
	}
	first := errors.New("first")
	b.Reconnecting(first)
	time.Sleep(time.Millisecond) // two distinct Since values
	c.Reconnecting(errors.New("second"))
	b.Reconnecting(errors.New("again")) // keeps its Since, takes the newer error
	h := s.Health()
	if h.State != bus.HealthReconnecting || h.Err == nil || h.Err.Error() != "again" || !h.Since.Before(c.Health().Since) {
		t.Fatalf("two reconnecting: %+v", h)
	}
	s.Remove(b)
	if h := s.Health(); h.Err.Error() != "second" {
		t.Fatalf("after removing the oldest: %+v", h)
	}
	if h := s.Health(); h.Reconnects != 2 {
		t.Fatalf("reconnects %d, want 2 (b once, c once; b's second report is the same loss)", h.Reconnects)
	}
	s.Close()
	if h := s.Health(); h.State != bus.HealthClosed || h.Healthy(time.Hour) || h.Reconnects != 2 {
		t.Fatalf("closed: %+v", h)
	}
}
