// Package subrun is the skeleton every adapter's Subscribe runs, so that
// the rules of bus.Subscriber hold the same way on every broker:
//
//   - arguments are checked first (bus.ErrInvalid, and the adapter's own
//     Params.Check), then the Subscriber's state: after Close, Subscribe
//     fails with bus.ErrClosed;
//   - the adapter's logger is the default and a caller's Logger option,
//     bus.DiscardLogger() included, always wins;
//   - a subscription that ends before it was live returns an error: the
//     one that kept it from going live, bus.ErrClosed when Close came
//     first, or the context's error when ctx ended first; OnReady is then
//     never called;
//   - a subscription that was live returns nil when ctx ends or Close
//     stops it, and an error only when it failed for good;
//   - when ctx ends, running handlers get a grace period, then their
//     contexts are cancelled and Subscribe returns without waiting for
//     handlers that ignore their context (their messages are left
//     unsettled, for the broker to deliver again); when Close stops the
//     subscription, the Close or Shutdown deadline plays that part.
package subrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/dispatch"
	"github.com/busline/bus/internal/health"
	"github.com/busline/bus/internal/lifecycle"
	"github.com/busline/bus/internal/pipeline"
)

// Params describes one Subscribe call to Begin.
type Params struct {
	// Pkg names the adapter in errors ("amqp").
	Pkg string
	// Life is the Subscriber's lifecycle.
	Life *lifecycle.State
	// Logger is the adapter's logger, the default for the subscription.
	Logger *slog.Logger
	// DeadLetter publishes the subscription's dead letters.
	DeadLetter pipeline.DeadLetterFunc
	// Check, when set, checks the resolved options against what the
	// adapter supports (a group it cannot have, say); its error is
	// returned as it is, before the Subscriber's state is looked at.
	Check func(topic string, cfg driver.SubscribeConfig) error
	// Grace is how long running handlers may go on after ctx ends before
	// their contexts are cancelled. Default: bus.DefaultCloseTimeout.
	Grace time.Duration
	// Health, when set, gets a tracker for the subscription while it runs.
	Health *health.Set
}

// Sub is one running Subscribe call.
type Sub struct {
	Topic  string
	Config driver.SubscribeConfig
	// Runner runs the pipeline on one message.
	Runner *pipeline.Runner
	// Pool runs handlers up to Config.Concurrency, in key order.
	Pool *dispatch.Pool
	// Work ends when the caller's ctx ends or Close starts: take no new
	// messages then.
	Work context.Context
	// Handlers is the parent of every handler context of the subscription:
	// it ends a grace period after ctx ends, when a Shutdown deadline runs
	// out, and once the subscription has ended.
	Handlers context.Context

	pkg         string
	ctx         context.Context
	life        *lifecycle.State
	leave       func()
	cancelWork  context.CancelFunc
	cancelHands context.CancelFunc
	stopGrace   func() bool
	live        atomic.Bool
	readyOnce   sync.Once
	health      *health.Tracker // nil without Params.Health
	healthSet   *health.Set
}

// Begin checks the arguments of Subscribe(ctx, topic, h, opts...) and
// registers the subscription with p.Life. Its error is final: return it.
// Otherwise the caller must call End exactly once.
func Begin(ctx context.Context, p Params, topic string, h bus.Handler, opts []bus.SubscribeOption) (*Sub, error) {
	logger := p.Logger
	if logger == nil {
		logger = bus.DiscardLogger()
	}
	cfg, err := driver.NewSubscribeConfig(topic, h, append([]bus.SubscribeOption{bus.Logger(logger)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: subscribe: %w", p.Pkg, err)
	}
	wrapped, err := cfg.Wrap(h)
	if err != nil {
		return nil, fmt.Errorf("%s: subscribe: %w", p.Pkg, err)
	}
	if p.Check != nil {
		if err := p.Check(topic, cfg); err != nil {
			return nil, err
		}
	}
	leave, err := p.Life.Enter()
	if err != nil {
		return nil, fmt.Errorf("%s: subscribe to %q: %w", p.Pkg, topic, err)
	}
	if err := ctx.Err(); err != nil {
		leave()
		return nil, fmt.Errorf("%s: subscribe to %q: %w", p.Pkg, topic, err)
	}
	s := &Sub{Topic: topic, Config: cfg, pkg: p.Pkg, ctx: ctx, life: p.Life, leave: leave, healthSet: p.Health}
	if p.Health != nil {
		s.health = p.Health.Add()
	}
	s.Work, s.cancelWork = p.Life.WorkContext(ctx)
	s.Handlers, s.cancelHands = context.WithCancel(p.Life.HandlerContext())
	grace := p.Grace
	if grace <= 0 {
		grace = bus.DefaultCloseTimeout
	}
	// Only the caller's ctx starts the grace: a Close is bounded by its own
	// deadline, which cancels HandlerContext.
	s.stopGrace = context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, s.cancelHands)
		context.AfterFunc(s.Handlers, func() { t.Stop() })
	})
	s.Pool = dispatch.New(cfg.Concurrency)
	s.Runner = &pipeline.Runner{Topic: topic, Config: cfg, Handler: wrapped, DeadLetter: p.DeadLetter, Stop: s.Work.Done()}
	return s, nil
}

// Session is a scope of handling inside a subscription, such as one
// channel or one consumer group generation: its own worker pool and its
// own handler context. When the scope is lost, End cancels its handlers
// and lets go of them: a handler that ignores its context keeps its
// goroutine, not the subscription's workers, and its message is left
// unsettled, for the broker to deliver again.
type Session struct {
	// Pool runs the session's handlers, up to the subscription's
	// Concurrency, in key order.
	Pool *dispatch.Pool
	// Ctx is the handler context of the session's messages. It ends with
	// Sub.Handlers or End.
	Ctx    context.Context
	cancel context.CancelFunc
}

// NewSession starts a session of s.
func (s *Sub) NewSession() *Session {
	ctx, cancel := context.WithCancel(s.Handlers)
	return &Session{Pool: dispatch.New(s.Config.Concurrency), Ctx: ctx, cancel: cancel}
}

// Idle returns a channel closed once the jobs submitted so far have
// finished. Call it once no more jobs are submitted.
func (ss *Session) Idle() <-chan struct{} {
	idle := make(chan struct{})
	go func() { ss.Pool.Wait(); close(idle) }()
	return idle
}

// Wait waits for the jobs submitted so far until done is closed or the
// session's context ends, and reports whether they all finished. Call it
// once no more jobs are submitted.
func (ss *Session) Wait(done <-chan struct{}) bool {
	select {
	case <-ss.Idle():
		return true
	case <-done:
	case <-ss.Ctx.Done():
	}
	return false
}

// End cancels the handlers still running and releases the pool's workers
// once they are done with what was queued. Idempotent.
func (ss *Session) End() {
	ss.cancel()
	ss.Pool.Close()
}

// Capacity is how many messages the subscription holds at once, handled
// and waiting: the prefetch to ask of the broker.
func (s *Sub) Capacity() int { return dispatch.Capacity(s.Config.Concurrency) }

// Ready marks the subscription live and calls OnReady, once.
func (s *Sub) Ready() {
	s.readyOnce.Do(func() {
		s.live.Store(true)
		if s.health != nil {
			s.health.Live()
		}
		if s.Config.Ready != nil {
			s.Config.Ready()
		}
	})
}

// Reconnecting records, for Health, that the live subscription lost its
// connection or channel because of err.
func (s *Sub) Reconnecting(err error) {
	if s.health != nil && s.Live() {
		s.health.Reconnecting(err)
	}
}

// Resumed records, for Health, that the subscription is live again.
func (s *Sub) Resumed() {
	if s.health != nil && s.Live() {
		s.health.Live()
	}
}

// Live reports whether Ready was called.
func (s *Sub) Live() bool { return s.live.Load() }

// Submit hands job to the pool under key, waiting for room until Work
// ends; it reports whether job was queued.
func (s *Sub) Submit(key string, job func()) bool {
	return s.Pool.Submit(s.Work.Done(), key, job)
}

// WaitHandlers waits for the jobs submitted so far until Handlers ends and
// reports whether they all finished. Call it once no more jobs are
// submitted.
func (s *Sub) WaitHandlers() bool { return s.Pool.WaitUntil(s.Handlers.Done()) }

// End finishes the subscription: it waits for running handlers (bounded as
// WaitHandlers), cancels what is left, and returns Subscribe's result for
// err, the reason the adapter stopped (nil when it stopped because Work
// ended).
func (s *Sub) End(err error) error {
	s.WaitHandlers()
	s.cancelHands()
	s.Pool.Close()
	s.stopGrace()
	s.cancelWork()
	if s.health != nil {
		s.healthSet.Remove(s.health)
	}
	s.leave()
	if !s.Live() {
		switch {
		case s.life.Closed():
			return fmt.Errorf("%s: subscribe to %q: %w", s.pkg, s.Topic, bus.ErrClosed)
		case s.ctx.Err() != nil:
			return fmt.Errorf("%s: subscribe to %q: %w", s.pkg, s.Topic, s.ctx.Err())
		case err == nil:
			return fmt.Errorf("%s: subscribe to %q: ended before it was live", s.pkg, s.Topic)
		}
		return err
	}
	if s.Work.Err() != nil || errors.Is(err, bus.ErrClosed) {
		return nil
	}
	return err
}
