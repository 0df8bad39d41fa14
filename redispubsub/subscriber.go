package redispubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/ce"
	"github.com/busline/bus/internal/health"
	"github.com/busline/bus/internal/lifecycle"
	"github.com/busline/bus/internal/pipeline"
	"github.com/busline/bus/internal/subrun"
)

// Subscriber receives messages with SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE.
// Each subscription has a connection of its own. It is safe for concurrent
// use. It implements bus.Subscriber, bus.Shutdowner, bus.CapabilityReporter
// and bus.Aser.
type Subscriber struct {
	cfg    Config
	client goredis.UniversalClient
	life   *lifecycle.State
	stats  counters
	health health.Set // one tracker per running subscription
}

var (
	_ bus.Subscriber         = (*Subscriber)(nil)
	_ bus.Shutdowner         = (*Subscriber)(nil)
	_ bus.CapabilityReporter = (*Subscriber)(nil)
	_ bus.Aser               = (*Subscriber)(nil)
	_ bus.HealthReporter     = (*Subscriber)(nil)
)

// Stats counts what happened to the messages of every subscription of one
// Subscriber since it was created.
type Stats struct {
	// Received counts messages read from Redis.
	Received uint64
	// Handled counts messages whose handler returned nil.
	Handled uint64
	// DeadLettered counts messages pushed to a dead letter list: handler
	// failures after the last retry, and malformed messages.
	DeadLettered uint64
	// Malformed counts messages that claimed to be CloudEvents but were
	// not valid ones (they are dead-lettered, and counted there too).
	Malformed uint64
	// Abandoned counts messages neither handled nor dead-lettered: the
	// subscription stopped during a retry wait, or the dead letter push
	// failed. They are lost.
	Abandoned uint64
	// Dropped counts messages lost because the subscription's buffer
	// stayed full (see Config.BufferWait).
	Dropped uint64
	// Discarded counts buffered messages still unhandled when a Shutdown
	// deadline ended their subscription. They are lost.
	Discarded uint64
	// Disconnects counts subscription connections lost (errors, kills,
	// unanswered pings).
	Disconnects uint64
	// Gaps counts resubscriptions after a lost connection: each is a time
	// span whose messages Redis did not deliver and cannot replay.
	Gaps uint64
	// GapTime sums the length of those spans, measured from the moment the
	// loss was noticed to the confirmed resubscription.
	GapTime time.Duration
}

type counters struct {
	received, handled, deadLettered, malformed, abandoned atomic.Uint64
	dropped, discarded, disconnects, gaps                 atomic.Uint64
	gapTime                                               atomic.Int64
}

// NewSubscriber connects to the Redis server or cluster cfg names and checks
// that it answers, like NewPublisher.
func NewSubscriber(ctx context.Context, cfg Config) (*Subscriber, error) {
	cfg = cfg.withDefaults()
	c, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Subscriber{cfg: cfg, client: c, life: lifecycle.New()}, nil
}

// Stats returns a snapshot of the subscriber's counters.
func (s *Subscriber) Stats() Stats {
	c := &s.stats
	return Stats{
		Received: c.received.Load(), Handled: c.handled.Load(), DeadLettered: c.deadLettered.Load(),
		Malformed: c.malformed.Load(), Abandoned: c.abandoned.Load(), Dropped: c.dropped.Load(),
		Discarded: c.discarded.Load(), Disconnects: c.disconnects.Load(), Gaps: c.gaps.Load(),
		GapTime: time.Duration(c.gapTime.Load()),
	}
}

// Counts returns Stats as named counters — received, handled,
// dead_lettered, malformed, abandoned, dropped, discarded, disconnects,
// gaps — for exporters such as otelbus.ObserveHealth.
func (s *Subscriber) Counts() map[string]uint64 {
	st := s.Stats()
	return map[string]uint64{
		"received": st.Received, "handled": st.Handled, "dead_lettered": st.DeadLettered,
		"malformed": st.Malformed, "abandoned": st.Abandoned, "dropped": st.Dropped,
		"discarded": st.Discarded, "disconnects": st.Disconnects, "gaps": st.Gaps,
	}
}

// IsPattern reports whether a topic is subscribed to as a pattern
// (PSUBSCRIBE): it contains one of the glob characters '*', '?' or '['.
// A literal '*' in a pattern is written '\*'.
func IsPattern(topic string) bool { return strings.ContainsAny(topic, "*?[") }

// Subscribe runs h for every message published on the channel topic, or on
// every channel matching it when topic is a pattern (see IsPattern), until
// ctx ends or the Subscriber is closed. It calls the OnReady callback once
// Redis has confirmed the subscription. Asking for a bus.Group is an error
// wrapping bus.ErrUnsupported: Redis pub/sub has no consumer groups. A
// pattern in sharded mode is an error wrapping bus.ErrUnsupported too.
//
// Delivery is at most once; see the package doc for the buffer, reconnect
// and dead letter rules.
func (s *Subscriber) Subscribe(ctx context.Context, topic string, h bus.Handler, opts ...bus.SubscribeOption) error {
	counted := func(ctx context.Context, m *bus.Message) error {
		err := h(ctx, m)
		if err == nil {
			s.stats.handled.Add(1)
		}
		return err
	}
	if h == nil {
		counted = nil
	}
	sub, err := subrun.Begin(ctx, subrun.Params{Pkg: "redispubsub", Life: s.life, Logger: s.cfg.Logger, DeadLetter: s.deadLetter,
		Check: s.check, Health: &s.health}, topic, counted, opts)
	if err != nil {
		return err
	}
	return sub.End(s.run(sub))
}

// check refuses what Redis pub/sub cannot do: groups, and patterns when
// sharded.
func (s *Subscriber) check(topic string, sc driver.SubscribeConfig) error {
	if sc.Group != "" {
		return fmt.Errorf("redispubsub: subscribe to %q with group %q: %w: Redis pub/sub has no consumer groups, "+
			"every subscriber gets every message; for competing consumers use the amqp or kafka adapter (or Redis Streams)",
			topic, sc.Group, bus.ErrUnsupported)
	}
	if IsPattern(topic) && *s.cfg.Sharded {
		return fmt.Errorf("redispubsub: subscribe to %q: %w: sharded pub/sub has no patterns; "+
			"use sharded=false (PUBLISH/PSUBSCRIBE) for pattern subscriptions", topic, bus.ErrUnsupported)
	}
	return nil
}

// run is Subscribe once its arguments are checked.
func (s *Subscriber) run(sub *subrun.Sub) error {
	topic, sc := sub.Topic, sub.Config
	pattern := IsPattern(topic)
	wctx := sub.Work
	rs := &subscription{s: s, run: sub, topic: topic, pattern: pattern, log: sc.Logger,
		buf: make(chan *goredis.Message, s.cfg.BufferSize), stop: wctx.Done()}
	stopWatch := context.AfterFunc(wctx, rs.closeConn)
	defer stopWatch()

	ps, err := rs.open()
	if err != nil {
		return err
	}
	sub.Ready()

	readerDone := make(chan struct{})
	go func() { defer close(readerDone); rs.read(ps) }()

	// What was received is handled even after the subscription stops:
	// Redis will not deliver it again. Only the end of the handlers'
	// context (a Shutdown deadline, the grace after ctx ends) cuts this
	// short.
	discarded := 0
	handle := func(rm *goredis.Message) {
		if sub.Handlers.Err() != nil {
			discarded++
			return
		}
		s.dispatch(sub, rm)
	}
loop:
	for {
		select {
		case <-wctx.Done():
			break loop
		case <-readerDone:
			break loop
		case rm := <-rs.buf:
			handle(rm)
		}
	}
	rs.closeConn()
	<-readerDone
	for len(rs.buf) > 0 {
		handle(<-rs.buf)
	}
	if discarded > 0 {
		s.stats.discarded.Add(uint64(discarded))
		sc.Logger.Warn("redispubsub: shutdown deadline passed; buffered messages discarded", "topic", topic, "count", discarded)
	}
	if err := rs.fatal; err != nil && wctx.Err() == nil {
		return err
	}
	return nil
}

// dispatch decodes one received message and hands it to the pool. Once the
// subscription has stopped taking messages, it waits for room in the pool
// only as long as the handlers' context lasts.
func (s *Subscriber) dispatch(sub *subrun.Sub, rm *goredis.Message) {
	raw := []byte(rm.Payload)
	m := &bus.Message{}
	var bad error
	if s.cfg.Format == FormatRaw {
		m.ID, m.Body = uuid.NewString(), raw
	} else if err := ce.UnmarshalStructured(raw, m); err != nil {
		bad = fmt.Errorf("redispubsub: message on %q: %w", rm.Channel, err)
		s.stats.malformed.Add(1)
		m = &bus.Message{ID: uuid.NewString(), Body: raw}
	}
	m.Delivery = bus.Delivery{Topic: rm.Channel, Native: rm}
	r, hctx := sub.Runner, sub.Handlers
	job := func() {
		var out pipeline.Outcome
		if bad != nil {
			out = r.Poison(hctx, m, bad)
		} else {
			out = r.Handle(hctx, m)
		}
		if out == pipeline.Abandon {
			s.stats.abandoned.Add(1)
			r.Config.Logger.Warn("redispubsub: message abandoned and lost (at-most-once)", "topic", r.Topic, "id", m.ID)
		}
	}
	if !sub.Pool.Submit(hctx.Done(), m.Key, job) {
		s.stats.discarded.Add(1)
		r.Config.Logger.Warn("redispubsub: shutdown deadline passed; message discarded", "topic", r.Topic, "id", m.ID)
	}
}

// deadLetter pushes a dead-lettered message onto the Redis list named
// topic, as a structured CloudEvents document, trimming the list when
// Config.DeadLetterMaxLen is set.
func (s *Subscriber) deadLetter(ctx context.Context, topic string, m *bus.Message) error {
	if m.Source == "" {
		m.Source = bus.DefaultSource
	}
	if m.Type == "" {
		m.Type = bus.DefaultType
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	doc := ce.MarshalStructured(m)
	var err error
	if s.cfg.DeadLetterMaxLen > 0 {
		_, err = s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.RPush(ctx, topic, doc)
			p.LTrim(ctx, topic, int64(-s.cfg.DeadLetterMaxLen), -1)
			return nil
		})
	} else {
		err = s.client.RPush(ctx, topic, doc).Err()
	}
	if err != nil {
		return wrapErr(fmt.Sprintf("dead letter to list %q", topic), err)
	}
	s.stats.deadLettered.Add(1)
	return nil
}

// Capabilities reports what the adapter guarantees under this
// subscriber's configuration; see the package doc.
func (s *Subscriber) Capabilities() bus.Capabilities { return capabilities(s.cfg) }

// As sets target to the go-redis client, like Publisher.As.
func (s *Subscriber) As(target any) bool { return asClient(s.client, target) }

// Close stops every subscription, lets the handlers finish the messages
// already received, running and buffered (at most bus.DefaultCloseTimeout),
// and closes the connections. Buffered messages left when the time is up
// are discarded and counted. It is idempotent.
func (s *Subscriber) Close() error {
	s.health.Close()
	return s.life.Close(s.release)
}

// Shutdown is Close bounded by ctx: when ctx ends, the contexts of handlers
// still running are cancelled.
func (s *Subscriber) Shutdown(ctx context.Context) error {
	s.health.Close()
	return s.life.Shutdown(ctx, s.release)
}

// Health reports the least healthy of the running subscriptions (see
// bus.Health): reconnecting from the moment a subscription's connection is
// lost until Redis confirms it again. Messages published meanwhile are
// lost (at-most-once); Stats counts the gaps.
func (s *Subscriber) Health() bus.Health { return s.health.Health() }

func (s *Subscriber) release() error {
	if err := s.client.Close(); err != nil {
		return wrapErr("close", err)
	}
	return nil
}

// subscription is one Subscribe call's connection state.
type subscription struct {
	s       *Subscriber
	run     *subrun.Sub // for Health
	topic   string
	pattern bool
	log     *slog.Logger
	buf     chan *goredis.Message
	stop    <-chan struct{}

	mu      sync.Mutex
	ps      *goredis.PubSub // the current connection, closed on stop
	stopped bool

	// Owned by the reader goroutine.
	overloaded bool
	dropRun    uint64
	fatal      error // why the reader gave up, read after it exited
}

// closeConn closes the current connection and refuses new ones, which
// unblocks the reader.
func (sub *subscription) closeConn() {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.stopped = true
	if sub.ps != nil {
		_ = sub.ps.Close()
		sub.ps = nil
	}
}

// setConn makes ps the current connection, or closes it and reports false
// when the subscription is stopping.
func (sub *subscription) setConn(ps *goredis.PubSub) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.stopped {
		_ = ps.Close()
		return false
	}
	sub.ps = ps
	return true
}

func (sub *subscription) kind() string {
	switch {
	case sub.pattern:
		return "psubscribe"
	case *sub.s.cfg.Sharded:
		return "ssubscribe"
	}
	return "subscribe"
}

// open opens a connection, subscribes and waits for Redis to confirm it.
func (sub *subscription) open() (*goredis.PubSub, error) {
	bg := context.Background()
	c := sub.s.client
	var ps *goredis.PubSub
	switch sub.kind() {
	case "psubscribe":
		ps = c.PSubscribe(bg)
	case "ssubscribe":
		ps = c.SSubscribe(bg)
	default:
		ps = c.Subscribe(bg)
	}
	if !sub.setConn(ps) {
		return nil, bus.ErrClosed
	}
	var err error
	switch sub.kind() {
	case "psubscribe":
		err = ps.PSubscribe(bg, sub.topic)
	case "ssubscribe":
		err = ps.SSubscribe(bg, sub.topic)
	default:
		err = ps.Subscribe(bg, sub.topic)
	}
	if err != nil {
		sub.dropConn(ps)
		return nil, wrapErr(fmt.Sprintf("%s %q on %s", sub.kind(), sub.topic, sub.s.cfg.where()), err)
	}
	cfg := sub.s.cfg
	deadline := time.Now().Add(cfg.DialTimeout + cfg.ReadTimeout)
	for i := 0; ; i++ {
		wait := time.Until(deadline)
		if wait <= 0 || i > 100 {
			sub.dropConn(ps)
			return nil, fmt.Errorf("redispubsub: %s %q on %s: %w: no confirmation within %v",
				sub.kind(), sub.topic, cfg.where(), bus.ErrUnreachable, cfg.DialTimeout+cfg.ReadTimeout)
		}
		v, err := ps.ReceiveTimeout(bg, wait)
		if err != nil {
			sub.dropConn(ps)
			return nil, wrapErr(fmt.Sprintf("%s %q on %s", sub.kind(), sub.topic, cfg.where()), err)
		}
		if c, ok := v.(*goredis.Subscription); ok && c.Kind == sub.kind() && c.Channel == sub.topic {
			return ps, nil
		}
	}
}

// dropConn closes ps if it is still the current connection.
func (sub *subscription) dropConn(ps *goredis.PubSub) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	_ = ps.Close()
	if sub.ps == ps {
		sub.ps = nil
	}
}

func (sub *subscription) isStopped() bool {
	select {
	case <-sub.stop:
		return true
	default:
		return false
	}
}

// sleep waits d or until the subscription stops, and reports whether it
// may go on.
func (sub *subscription) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-sub.stop:
		return false
	}
}

func (sub *subscription) backoff(failures int) time.Duration {
	d := 50 * time.Millisecond
	for i := 1; i < failures && d < sub.s.cfg.MaxReconnectBackoff; i++ {
		d *= 2
	}
	return min(d, sub.s.cfg.MaxReconnectBackoff)
}

// read is the reader goroutine: it moves messages from the connection to
// the buffer and keeps the subscription alive across lost connections.
// go-redis reconnects and resubscribes on the call after a connection
// error; a connection that stops answering pings is replaced here.
func (sub *subscription) read(ps *goredis.PubSub) {
	st := &sub.s.stats
	var lostAt time.Time
	lost := func(why string, err error) {
		sub.run.Reconnecting(wrapErr(fmt.Sprintf("%s %q: %s", sub.kind(), sub.topic, why), err))
		if lostAt.IsZero() {
			lostAt = time.Now()
			st.disconnects.Add(1)
			sub.log.Warn("redispubsub: subscription connection lost; reconnecting", "topic", sub.topic, "reason", why, "error", err)
		}
	}
	resubscribed := func() {
		sub.run.Resumed()
		gap := time.Duration(0)
		if !lostAt.IsZero() {
			gap = time.Since(lostAt)
		}
		lostAt = time.Time{}
		st.gaps.Add(1)
		st.gapTime.Add(int64(gap))
		sub.log.Warn("redispubsub: resubscribed after a lost connection; messages published in the gap are lost",
			"topic", sub.topic, "gap", gap)
	}
	failures := 0
	pingSent := false
	for {
		v, err := ps.ReceiveTimeout(context.Background(), sub.s.cfg.PingInterval)
		if sub.isStopped() {
			return
		}
		if err != nil {
			var nerr net.Error
			if errors.As(err, &nerr) && nerr.Timeout() {
				if !pingSent {
					pingSent = true
					if perr := ps.Ping(context.Background()); perr == nil {
						continue
					}
				}
				// The ping went unanswered: replace the connection.
				lost("ping unanswered", err)
				pingSent = false
				sub.dropConn(ps)
				if ps = sub.reopen(); ps == nil {
					return
				}
				resubscribed()
				continue
			}
			lost("receive failed", err)
			failures++
			if isPermanent(err) && failures > 3 {
				sub.log.Error("redispubsub: subscription failed for good", "topic", sub.topic, "error", err)
				sub.fatal = wrapErr(fmt.Sprintf("%s %q", sub.kind(), sub.topic), err)
				return
			}
			if !sub.sleep(sub.backoff(failures)) {
				return
			}
			continue
		}
		failures, pingSent = 0, false
		switch m := v.(type) {
		case *goredis.Message:
			st.received.Add(1)
			sub.enqueue(m)
		case *goredis.Subscription:
			switch {
			case m.Channel != sub.topic:
			case m.Kind == sub.kind():
				resubscribed()
			case m.Kind == "sunsubscribe" || m.Kind == "unsubscribe" || m.Kind == "punsubscribe":
				// The server dropped us (a cluster slot moved): subscribe again.
				lost("server unsubscribed", nil)
				sub.dropConn(ps)
				if ps = sub.reopen(); ps == nil {
					return
				}
				resubscribed()
			}
		}
	}
}

// reopen opens a new connection with backoff until it succeeds or the
// subscription stops (then it returns nil).
func (sub *subscription) reopen() *goredis.PubSub {
	for failures := 1; ; failures++ {
		ps, err := sub.open()
		if err == nil {
			return ps
		}
		if sub.isStopped() {
			return nil
		}
		sub.run.Reconnecting(wrapErr(fmt.Sprintf("%s %q: resubscribe", sub.kind(), sub.topic), err))
		sub.log.Warn("redispubsub: resubscribe failed; retrying", "topic", sub.topic, "error", err)
		if !sub.sleep(sub.backoff(failures)) {
			return nil
		}
	}
}

// enqueue puts m in the buffer. When the buffer is full it waits up to
// BufferWait for room, then drops m; while the buffer stays full after a
// drop, later messages are dropped without waiting.
func (sub *subscription) enqueue(m *goredis.Message) {
	select {
	case sub.buf <- m:
		sub.recovered()
		return
	default:
	}
	if !sub.overloaded {
		t := time.NewTimer(sub.s.cfg.BufferWait)
		select {
		case sub.buf <- m:
			t.Stop()
			return
		case <-t.C:
		case <-sub.stop:
			t.Stop()
			return
		}
		sub.overloaded = true
		sub.log.Warn("redispubsub: subscription buffer full; dropping messages until the handlers catch up",
			"topic", sub.topic, "buffer_size", cap(sub.buf))
	}
	sub.dropRun++
	sub.s.stats.dropped.Add(1)
}

func (sub *subscription) recovered() {
	if sub.overloaded {
		sub.log.Warn("redispubsub: subscription buffer has room again", "topic", sub.topic, "dropped", sub.dropRun)
		sub.overloaded, sub.dropRun = false, 0
	}
}
