package lifecycle

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/busline/bus"
)

func TestCloseDrainsAndIsIdempotent(t *testing.T) {
	s := New()
	leave, err := s.Enter()
	if err != nil {
		t.Fatal(err)
	}
	released := 0
	closed := make(chan error)
	go func() { closed <- s.Close(func() error { released++; return errors.New("release failed") }) }()
	<-s.Stopping()
	if _, err := s.Enter(); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Enter after Close = %v", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned with work in flight")
	case <-time.After(20 * time.Millisecond):
	}
	if s.HandlerContext().Err() != nil {
		t.Fatal("handler context cancelled before the deadline")
	}
	leave()
	if err := <-closed; err == nil || err.Error() != "release failed" {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(nil); err == nil || released != 1 {
		t.Fatalf("second Close = %v, release ran %d times", err, released)
	}
}

func TestShutdownDeadlineCancelsHandlers(t *testing.T) {
	s := New()
	leave, _ := s.Enter()
	go func() { <-s.HandlerContext().Done(); leave() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline's error", err)
	}
	if !s.Closed() {
		t.Fatal("not closed")
	}
}

// Work that ignores the cancelled handler context does not hold Shutdown
// past its deadline; release still runs. On the commit before this test,
// Shutdown waited for such work forever.
func TestShutdownKeepsDeadlineWhenWorkIgnoresIt(t *testing.T) {
	s := New()
	_, _ = s.Enter() // never leaves
	released := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx, func() error { close(released); return nil }) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown waited past its deadline for work that ignores its context")
	}
	select {
	case <-released:
	default:
		t.Fatal("release did not run")
	}
	if s.HandlerContext().Err() == nil {
		t.Fatal("handler context not cancelled")
	}
}

func TestWorkContext(t *testing.T) {
	s := New()
	wctx, cancel := s.WorkContext(context.Background())
	defer cancel()
	go s.Close(nil)
	select {
	case <-wctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("work context survived Close")
	}
}
