// Package lifecycle holds the Close/Shutdown rules every adapter shares:
// calls after Close fail with bus.ErrClosed, Close is idempotent, and it
// drains: stop taking new work, wait for work in flight (bounded by a
// deadline, after which handler contexts are cancelled), then release.
package lifecycle

import (
	"context"
	"errors"
	"sync"

	"github.com/busline/bus"
)

// State tracks one publisher's or subscriber's open work. The zero value is
// not usable; call New.
type State struct {
	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	stopCtx context.Context // done when Close starts: take no new work
	stopFn  context.CancelFunc
	hardCtx context.Context
	hard    context.CancelFunc // cancels handler contexts: the deadline ran out
	once    sync.Once
	err     error
	doneCh  chan struct{}
}

// New returns an open State.
func New() *State {
	ctx, cancel := context.WithCancel(context.Background())
	stopCtx, stop := context.WithCancel(context.Background())
	return &State{stopCtx: stopCtx, stopFn: stop, hardCtx: ctx, hard: cancel, doneCh: make(chan struct{})}
}

// Enter registers one unit of work (a Publish call, a running Subscribe).
// It fails with bus.ErrClosed once Close has started. Call the returned
// function when the work is done.
func (s *State) Enter() (leave func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, bus.ErrClosed
	}
	s.wg.Add(1)
	return s.wg.Done, nil
}

// Stopping is closed when Close starts: subscriptions stop taking messages.
func (s *State) Stopping() <-chan struct{} { return s.stopCtx.Done() }

// Closed reports whether Close has started.
func (s *State) Closed() bool {
	return s.stopCtx.Err() != nil
}

// HandlerContext is the parent of every handler's context: it is
// cancelled only when a Shutdown deadline runs out.
func (s *State) HandlerContext() context.Context { return s.hardCtx }

// WorkContext returns a context that ends when ctx ends or Close starts,
// for loops that take new work. Call cancel when done with it.
func (s *State) WorkContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.stopCtx, cancel)
	return wctx, func() { stop(); cancel() }
}

// Shutdown closes the state once: it marks it closed and waits for the
// work registered with Enter to leave. If ctx ends first, it cancels
// HandlerContext and stops waiting: work still in flight is left to end on
// its own (a handler that ignores its context keeps its goroutine, but its
// message is no longer settled: the broker delivers it again), and the
// result is ctx.Err(). Either way it then runs release, whose error is
// joined to the result. Later calls wait for the first to finish and
// return its result.
func (s *State) Shutdown(ctx context.Context, release func() error) error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.stopFn()
		s.mu.Unlock()

		drained := make(chan struct{})
		go func() { s.wg.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-ctx.Done():
			s.err = ctx.Err()
		}
		s.hard()
		if release != nil {
			s.err = errors.Join(s.err, release())
		}
		close(s.doneCh)
	})
	<-s.doneCh
	return s.err
}

// Close is Shutdown bounded by bus.DefaultCloseTimeout: it returns
// context.DeadlineExceeded when work was still in flight then.
func (s *State) Close(release func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), bus.DefaultCloseTimeout)
	defer cancel()
	return s.Shutdown(ctx, release)
}
