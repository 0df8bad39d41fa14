package amqp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/health"
	"github.com/busline/bus/internal/lifecycle"
)

// Publisher publishes to RabbitMQ with publisher confirms. It implements
// bus.Publisher, bus.Shutdowner, bus.CapabilityReporter and bus.Aser.
//
// One goroutine owns the publishing channel: Publish calls hand it their
// encoded messages, it pipelines everything it is given (from any number
// of concurrent calls) and resolves each call when the broker has
// confirmed all of its messages. When the channel or connection is lost,
// messages whose confirm did not arrive are published again on the next
// channel (so a message may be stored twice, never reported as published
// without a confirm); the caller's context bounds the wait.
//
// When the broker closes the channel because it refuses a message (a
// body over its max_message_size, a missing right), that message fails
// its own Publish and the others are published again. The refused message
// is one of those unconfirmed at the close that the broker's reason can be
// about (a body over the size limit it names, a message to the exchange it
// names); if there is only one such message, it is failed at once.
// Otherwise those become suspects, published again one at a time until
// one closes the channel alone: that one is failed, the rest were not the
// cause and go back to pipelined publishing, except those that were
// suspects once before, which keep being published alone until settled.
// So a message is published at most three times because of refusals, and
// no caller waits on another caller's message.
type Publisher struct {
	cfg  Config
	topo topology
	conn *conn
	// health is Live while a publishing channel is open.
	health *health.Tracker
	own    bool // close conn on Close
	life   *lifecycle.State

	reqs    chan *batch
	ctx     context.Context // ends when the publisher stops (also cutting a wait for a connection)
	stop    context.CancelFunc
	stopped chan struct{}
	lastErr atomic.Pointer[error] // last connection error, for ctx errors
	current atomic.Pointer[amqp091.Channel]

	// suspects are messages that were unconfirmed when the broker closed
	// a channel refusing one of them, in the order to publish them alone.
	// Owned by the channel goroutine.
	suspects []flight

	// The connection's blocked state, owned by the channel goroutine. The
	// listener is registered once per connection, not per channel: the
	// client never removes one, and it blocks its reader on a listener
	// nobody drains.
	blocksConn *amqp091.Connection
	blocks     chan amqp091.Blocking
	blocked    bool
}

// NewPublisher connects to the broker cfg names and returns a Publisher.
// The first connection is made before it returns, so that wrong
// credentials (bus.ErrPermission), an unknown vhost (bus.ErrNotFound) or an
// unreachable broker (bus.ErrUnreachable) are reported here.
func NewPublisher(ctx context.Context, cfg Config) (*Publisher, error) {
	c, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	if err := dialFirst(ctx, c); err != nil {
		return nil, err
	}
	return newPublisher(c, true), nil
}

// dialFirst makes the first connection, bounded by ctx.
func dialFirst(ctx context.Context, c *conn) error {
	if _, err := c.get(ctx); err != nil {
		_ = c.close()
		return err
	}
	return nil
}

func newPublisher(c *conn, own bool) *Publisher {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		ctx:     ctx,
		stop:    cancel,
		cfg:     c.cfg,
		topo:    topology{mode: c.cfg.Topology, queueType: c.cfg.QueueType},
		conn:    c,
		own:     own,
		life:    lifecycle.New(),
		health:  health.NewTracker(bus.HealthLive),
		reqs:    make(chan *batch),
		stopped: make(chan struct{}),
	}
	go p.run()
	return p
}

// batch is the work of one Publish call, owned by the channel goroutine
// once handed over, except done.
type batch struct {
	ctx      context.Context
	topic    string
	exchange string
	key      string
	pubs     []amqp091.Publishing
	todo     []int   // indexes of pubs still to publish, in order
	left     int     // pubs neither confirmed nor failed
	failed   []int   // indexes of the pubs that failed
	strikes  []uint8 // per pub, made on its first refused close: how many it was a suspect of
	err      error
	queued   bool
	done     chan error // receives err once left reaches 0
}

func (b *batch) resolve(i int, err error) {
	if err != nil {
		if b.err == nil {
			b.err = err
		}
		b.failed = append(b.failed, i)
	}
	b.left--
	if b.left == 0 {
		if b.err != nil && len(b.failed) < len(b.pubs) {
			// Some were taken: say which were not, for the caller to
			// resend only those.
			slices.Sort(b.failed)
			b.err = &bus.PublishError{Failed: b.failed, Err: b.err}
		}
		b.done <- b.err
	}
}

// Publish sends msgs to topic and returns once the broker has confirmed
// every one of them. In exchange mode a message that no queue is bound
// to gets an error wrapping bus.ErrUnroutable; in work-queue mode the
// topic's durable queue is declared first, as the classic work-queue
// producer does. It is safe for concurrent use; concurrent calls are
// pipelined on one channel and confirmed together. A message the broker
// refuses by closing the channel (larger than its max_message_size, a
// missing right) fails this call with an error wrapping bus.ErrTooLarge,
// bus.ErrPermission, bus.ErrNotFound or bus.ErrInvalid and the broker's
// reason; the other messages are published again. After Close it returns
// bus.ErrClosed.
func (p *Publisher) Publish(ctx context.Context, topic string, msgs ...*bus.Message) error {
	leave, err := p.life.Enter()
	if err != nil {
		return err
	}
	defer leave()
	if len(msgs) == 0 {
		return driver.ValidateTopic(topic)
	}
	if err := driver.PreparePublish(topic, msgs, p.cfg.MaxBodyBytes); err != nil {
		return fmt.Errorf("amqp: publish to %q: %w", topic, err)
	}
	ex, key := p.topo.destination(topic)
	b := &batch{ctx: ctx, topic: topic, exchange: ex, key: key, pubs: make([]amqp091.Publishing, len(msgs)),
		todo: make([]int, len(msgs)), left: len(msgs), done: make(chan error, 1)}
	for i, m := range msgs {
		b.pubs[i] = encode(m)
		b.todo[i] = i
	}
	hard := p.life.HandlerContext().Done()
	select {
	case p.reqs <- b:
	case <-ctx.Done():
		return p.ctxError(topic, ctx)
	case <-hard:
		return bus.ErrClosed
	}
	select {
	case err := <-b.done:
		return err
	case <-ctx.Done():
		return p.ctxError(topic, ctx)
	case <-hard:
		return bus.ErrClosed
	}
}

func (p *Publisher) ctxError(topic string, ctx context.Context) error {
	if e := p.lastErr.Load(); e != nil {
		return fmt.Errorf("amqp: publish to %q: %w (last connection error: %w)", topic, ctx.Err(), *e)
	}
	return fmt.Errorf("amqp: publish to %q: %w", topic, ctx.Err())
}

// Close waits for running Publish calls (up to bus.DefaultCloseTimeout),
// then releases the channel and connection. It is idempotent.
func (p *Publisher) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), bus.DefaultCloseTimeout)
	defer cancel()
	return p.Shutdown(ctx)
}

// Shutdown is Close bounded by ctx instead of bus.DefaultCloseTimeout.
func (p *Publisher) Shutdown(ctx context.Context) error {
	p.health.Closed()
	return p.life.Shutdown(ctx, func() error { return p.release(ctx) })
}

// Health reports whether the publisher has a channel to publish on (see
// bus.Health): reconnecting, with the last error, from the moment it lost
// it until it has a new one.
func (p *Publisher) Health() bus.Health { return p.health.Health() }

// stopGrace is how long release waits for the channel goroutine once the
// close deadline has passed before it cuts the connection under it.
const stopGrace = time.Second

func (p *Publisher) release(ctx context.Context) error {
	p.stop()
	select {
	case <-p.stopped:
	case <-ctx.Done():
		t := time.NewTimer(stopGrace)
		select {
		case <-p.stopped:
		case <-t.C:
			// The channel goroutine is stuck in a write to a broker that
			// stopped reading (a resource alarm): only cutting the
			// connection frees it.
			p.conn.abort()
			<-p.stopped
		}
		t.Stop()
	}
	if p.own {
		return p.conn.close()
	}
	return nil
}

// Capabilities reports what the publisher's topology guarantees.
func (p *Publisher) Capabilities() bus.Capabilities { return capabilities(p.cfg.Topology) }

// As sets target to the live publishing *amqp091.Channel or the
// *amqp091.Connection when target points to one of those types.
func (p *Publisher) As(target any) bool {
	if ch := p.current.Load(); ch != nil && driver.AsValue(ch, target) {
		return true
	}
	p.conn.mu.Lock()
	c := p.conn.c
	p.conn.mu.Unlock()
	return c != nil && driver.AsValue(c, target)
}

// capabilities is what each topology guarantees.
func capabilities(mode string) bus.Capabilities {
	return bus.Capabilities{
		Groups:          true,
		SingleGroup:     mode == TopologyWorkQueue,
		Broadcast:       mode == TopologyExchange,
		DurableGroups:   true,
		SurvivesRestart: true,
		OrderedByKey:    true,
		AtLeastOnce:     true,
	}
}

// run is the channel goroutine: it (re)opens the publishing channel and
// runs sessions on it until Close.
func (p *Publisher) run() {
	defer close(p.stopped)
	var queue []*batch
	bo := backoff{min: p.cfg.ReconnectMin, max: p.cfg.ReconnectMax}
	for {
		s, err := p.openSession()
		if err != nil {
			p.health.Reconnecting(err)
			p.lastErr.Store(&err)
			p.cfg.Logger.Warn("amqp: publisher channel unavailable", "url", p.conn.name, "error", err)
			if permanent(err) {
				// Retrying cannot help the callers waiting now.
				for _, b := range queue {
					todo := b.todo
					b.todo = nil
					for _, i := range todo {
						b.resolve(i, err)
					}
					b.queued = false
				}
				queue = nil
				p.failSuspects(err)
			}
			queue = p.waitOut(queue, bo.next())
			if queue == nil && p.isStopped() {
				return
			}
			continue
		}
		p.health.Live()
		queue = s.loop(queue)
		s.close()
		if !p.isStopped() {
			p.health.Reconnecting(errors.New("amqp: publishing channel lost"))
		}
		p.current.Store(nil)
		if p.isStopped() {
			for _, b := range queue {
				for _, i := range b.todo {
					b.resolve(i, bus.ErrClosed)
				}
			}
			p.failSuspects(bus.ErrClosed)
			return
		}
		// A channel that confirmed something, or had nothing to confirm, is
		// reopened at once, and so is one the broker closed refusing a
		// message (each such close fails a message or makes suspects of
		// the unconfirmed ones, so it is no endless loop). One that died
		// with messages out and no confirm waits, so that republishing is
		// no hot loop.
		if s.confirmed || !s.published || s.refused {
			bo.reset()
			continue
		}
		if queue = p.waitOut(queue, bo.next()); queue == nil && p.isStopped() {
			return
		}
	}
}

func (p *Publisher) isStopped() bool { return p.ctx.Err() != nil }

// waitOut waits d while no channel is available, still taking requests.
// It returns nil once stopped, after failing the queued work.
func (p *Publisher) waitOut(queue []*batch, d time.Duration) []*batch {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case b := <-p.reqs:
			b.queued = true
			queue = append(queue, b)
		case <-t.C:
			return p.dropCancelled(queue)
		case <-p.ctx.Done():
			for _, b := range queue {
				for _, i := range b.todo {
					b.resolve(i, bus.ErrClosed)
				}
			}
			p.failSuspects(bus.ErrClosed)
			return nil
		}
	}
}

// failSuspects resolves every suspect with err.
func (p *Publisher) failSuspects(err error) {
	for _, f := range p.suspects {
		f.b.resolve(f.i, err)
	}
	p.suspects = nil
}

// dropCancelled is the function dropCancelled for the suspects too.
func (p *Publisher) dropCancelled(queue []*batch) []*batch {
	sus := p.suspects[:0]
	for _, f := range p.suspects {
		if err := f.b.ctx.Err(); err != nil {
			f.b.resolve(f.i, err)
			continue
		}
		sus = append(sus, f)
	}
	p.suspects = sus
	return dropCancelled(queue)
}

// dropCancelled resolves the unpublished messages of batches whose caller
// has gone, so that they are not published after all.
func dropCancelled(queue []*batch) []*batch {
	out := queue[:0]
	for _, b := range queue {
		if err := b.ctx.Err(); err != nil {
			todo := b.todo
			b.todo = nil
			for _, i := range todo {
				b.resolve(i, err)
			}
			b.queued = false
			continue
		}
		out = append(out, b)
	}
	return out
}

// pubSession is one publishing channel and its bookkeeping.
type pubSession struct {
	p         *Publisher
	ch        *amqp091.Channel
	admin     *amqp091.Channel // declarations, kept apart so a failed one cannot kill the publishing channel
	confirms  chan amqp091.Confirmation
	returns   chan amqp091.Return
	closes    chan *amqp091.Error
	inflight  map[uint64]flight
	published bool // a message was published on this channel
	confirmed bool // a confirm arrived on this channel
	refused   bool // the broker closed the channel refusing a message
	probing   bool // the one message in flight is a suspect published alone
	returned  []amqp091.Return
	declared  map[string]error
	cork      *corkConn // under ch's connection: publishes written in a row go in one write
}

type flight struct {
	b *batch
	i int
}

func (p *Publisher) openSession() (*pubSession, error) {
	ac, err := p.conn.get(p.ctx)
	if err != nil {
		return nil, err
	}
	ch, err := ac.Channel()
	if err != nil {
		return nil, brokerError("open channel", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, brokerError("enable publisher confirms", err)
	}
	n := p.cfg.MaxInFlight + 16
	s := &pubSession{
		p:        p,
		ch:       ch,
		confirms: ch.NotifyPublish(make(chan amqp091.Confirmation, n)),
		returns:  ch.NotifyReturn(make(chan amqp091.Return, n)),
		closes:   ch.NotifyClose(make(chan *amqp091.Error, 1)),
		inflight: make(map[uint64]flight, p.cfg.MaxInFlight),
		declared: map[string]error{},
		cork:     p.conn.corker(ac),
	}
	if ac != p.blocksConn {
		p.blocksConn, p.blocks, p.blocked = ac, ac.NotifyBlocked(make(chan amqp091.Blocking, 4)), false
	}
	p.current.Store(ch)
	return s, nil
}

func (s *pubSession) close() {
	if s.admin != nil {
		_ = s.admin.Close()
	}
	_ = s.ch.Close()
}

// loop publishes queued work and settles confirms until the channel is
// lost (it returns the work to redo) or the publisher stops.
func (s *pubSession) loop(queue []*batch) []*batch {
	p := s.p
	for {
		var ok bool
		if queue, ok = s.publish(queue); !ok {
			return s.lost(queue)
		}
		select {
		case b := <-p.reqs:
			b.queued = true
			queue = append(queue, b)
			// Take the calls already waiting too: their messages go out
			// in the same write. Yielding first lets the callers a confirm
			// just released publish their next message into it.
			runtime.Gosched()
		more:
			for {
				select {
				case b := <-p.reqs:
					b.queued = true
					queue = append(queue, b)
				default:
					break more
				}
			}
		case c, ok := <-s.confirms:
			if !ok {
				return s.lost(queue)
			}
			s.drainReturns()
			s.settle(c)
		case r, ok := <-s.returns:
			if ok {
				s.returned = append(s.returned, r)
			}
		case bl, ok := <-p.blocks:
			if !ok { // the connection is gone; the next one gets a new listener
				p.blocks = nil
				continue
			}
			p.blocked = bl.Active
			if bl.Active {
				p.cfg.Logger.Warn("amqp: broker blocked publishing", "reason", bl.Reason)
			}
		case e := <-s.closes:
			return s.lostBecause(queue, e)
		case <-p.ctx.Done():
			// Every Publish call has returned by now (or the close
			// deadline ran out): whatever is left has no caller.
			for _, b := range queue {
				for _, i := range b.todo {
					b.resolve(i, bus.ErrClosed)
				}
				b.todo = nil
			}
			for tag, f := range s.inflight {
				delete(s.inflight, tag)
				f.b.resolve(f.i, bus.ErrClosed)
			}
			p.failSuspects(bus.ErrClosed)
			return nil
		}
	}
}

// publish writes queued messages while the in-flight window has room. It
// returns false when the channel failed. While there are suspects, it
// publishes them one at a time instead, and the queue waits.
func (s *pubSession) publish(queue []*batch) ([]*batch, bool) {
	if !s.probe() {
		return queue, false
	}
	if len(s.p.suspects) > 0 {
		return queue, true
	}
	max := s.p.cfg.MaxInFlight
	// Everything written below goes to the broker in one write.
	s.cork.hold()
	defer s.cork.release()
	for len(queue) > 0 && len(s.inflight) < max && !s.p.blocked {
		b := queue[0]
		if err := b.ctx.Err(); err != nil {
			todo := b.todo
			b.todo = nil
			for _, i := range todo {
				b.resolve(i, err)
			}
		}
		if len(b.todo) == 0 {
			b.queued = false
			queue = queue[1:]
			continue
		}
		if err := s.declare(b.topic); err != nil {
			if permanent(err) {
				todo := b.todo
				b.todo = nil
				for _, i := range todo {
					b.resolve(i, err)
				}
				continue
			}
			return queue, false
		}
		for len(b.todo) > 0 && len(s.inflight) < max {
			i := b.todo[0]
			tag := s.ch.GetNextPublishSeqNo()
			if err := s.ch.Publish(b.exchange, b.key, true, false, b.pubs[i]); err != nil {
				s.p.cfg.Logger.Warn("amqp: publish failed; will retry on a new channel", "error", err)
				return queue, false
			}
			b.todo = b.todo[1:]
			s.inflight[tag] = flight{b: b, i: i}
			s.published = true
		}
	}
	return queue, true
}

// probe publishes the next suspect when nothing is in flight. It returns
// false when the channel failed.
func (s *pubSession) probe() bool {
	p := s.p
	for len(p.suspects) > 0 && len(s.inflight) == 0 && !p.blocked {
		f := p.suspects[0]
		if err := f.b.ctx.Err(); err != nil {
			p.suspects = p.suspects[1:]
			f.b.resolve(f.i, err)
			continue
		}
		if err := s.declare(f.b.topic); err != nil {
			if permanent(err) {
				p.suspects = p.suspects[1:]
				f.b.resolve(f.i, err)
				continue
			}
			return false
		}
		tag := s.ch.GetNextPublishSeqNo()
		if err := s.ch.Publish(f.b.exchange, f.b.key, true, false, f.b.pubs[f.i]); err != nil {
			p.cfg.Logger.Warn("amqp: publish failed; will retry on a new channel", "error", err)
			return false
		}
		p.suspects = p.suspects[1:]
		s.inflight[tag] = f
		s.published = true
		s.probing = true
	}
	return true
}

// declare makes sure topic's destination exists, once per session.
func (s *pubSession) declare(topic string) error {
	if err, ok := s.declared[topic]; ok && err == nil {
		return nil
	}
	// publish holds the connection's writes: these calls wait for answers.
	return s.cork.through(func() error { return s.declareNow(topic) })
}

func (s *pubSession) declareNow(topic string) error {
	if s.admin == nil || s.admin.IsClosed() {
		ac, err := s.p.conn.get(s.p.ctx)
		if err != nil {
			return err
		}
		ch, err := ac.Channel()
		if err != nil {
			return brokerError("open channel", err)
		}
		s.admin = ch
	}
	err := s.p.topo.declareTopic(s.admin, topic)
	if err == nil {
		s.declared[topic] = nil
	}
	return err
}

func (s *pubSession) drainReturns() {
	for {
		select {
		case r, ok := <-s.returns:
			if !ok {
				return
			}
			s.returned = append(s.returned, r)
		default:
			return
		}
	}
}

// settle resolves the message a confirm is for. A basic.return for it, if
// any, came before the confirm (the broker sends it first) and is matched
// by destination and message ID.
func (s *pubSession) settle(c amqp091.Confirmation) {
	f, ok := s.inflight[c.DeliveryTag]
	if !ok {
		return
	}
	s.confirmed = true
	s.probing = false
	delete(s.inflight, c.DeliveryTag)
	var err error
	pub := &f.b.pubs[f.i]
	for j, r := range s.returned {
		if r.Exchange == f.b.exchange && r.RoutingKey == f.b.key && r.MessageId == pub.MessageId {
			s.returned = slices.Delete(s.returned, j, j+1)
			err = fmt.Errorf("amqp: %w: message %q to topic %q reached no queue (%d %s); subscribe a group first or publish to a declared queue",
				bus.ErrUnroutable, pub.MessageId, f.b.topic, r.ReplyCode, r.ReplyText)
			break
		}
	}
	if err == nil && !c.Ack {
		err = fmt.Errorf("amqp: broker refused message %q to topic %q (basic.nack)", pub.MessageId, f.b.topic)
	}
	f.b.resolve(f.i, err)
}

// lost is lostBecause with the reason the channel gives, if any: it is
// sent before the confirmation channel closes, and shortly after a
// publish on the closed channel fails.
func (s *pubSession) lost(queue []*batch) []*batch {
	if !s.ch.IsClosed() {
		return s.lostBecause(queue, nil) // no reason is coming
	}
	t := time.NewTimer(closeReasonWait)
	defer t.Stop()
	select {
	case e := <-s.closes:
		return s.lostBecause(queue, e)
	case <-t.C:
		return s.lostBecause(queue, nil)
	}
}

// closeReasonWait bounds the wait for a lost channel's close reason.
const closeReasonWait = time.Second

// lostBecause settles what the broker confirmed before the channel went,
// with cause the channel's close reason (nil when unknown). When the
// broker closed it refusing a message, the refused one is failed if it is
// certain which one it is, else the unconfirmed become suspects. The
// other unconfirmed messages go in front of the queue, in their original
// order, for the next channel.
func (s *pubSession) lostBecause(queue []*batch, cause *amqp091.Error) []*batch {
	p := s.p
	p.cfg.Logger.Warn("amqp: publishing channel lost", "unconfirmed", len(s.inflight), "reason", cause)
	for done := false; !done; {
		select {
		case c, ok := <-s.confirms:
			if !ok {
				done = true
				break
			}
			s.drainReturns()
			s.settle(c)
		default:
			done = true
		}
	}
	tags := slices.Sorted(maps.Keys(s.inflight))
	for _, tag := range tags {
		// The broker may have stored it already: a copy is flagged so that
		// subscribers see it as a possible redelivery.
		f := s.inflight[tag]
		f.b.pubs[f.i].Headers[headerRepublished] = "true"
	}
	if refusal(cause) && len(tags) > 0 {
		s.refused = true
		unconfirmed := make([]flight, len(tags))
		for j, tag := range tags {
			unconfirmed[j] = s.inflight[tag]
		}
		clear(s.inflight)
		// The refused message is one of the unconfirmed, and one the
		// broker's reason can be about.
		cands, innocent := unconfirmed, []flight(nil)
		limit, sized := sizeLimit(cause)
		exchange, named := refusedExchange(cause)
		if sized || named {
			var could, not []flight
			for _, f := range unconfirmed {
				if sized && len(f.b.pubs[f.i].Body) > limit || !sized && f.b.exchange == exchange {
					could = append(could, f)
				} else {
					not = append(not, f)
				}
			}
			if len(could) > 0 {
				cands, innocent = could, not
			}
		}
		// A missing exchange is declared again on the next channel, so a
		// message refused for it fails only if it is refused alone there.
		if len(cands) == 1 && (s.probing || cause.Code != amqp091.NotFound) {
			// The broker handles a channel's messages in order and confirms
			// none it refuses: this one it refused.
			f := cands[0]
			f.b.resolve(f.i, refusedError(f.b.topic, f.b.pubs[f.i].MessageId, cause))
			if s.probing {
				innocent = append(innocent, p.clearSuspects()...)
			}
			return s.requeue(innocent, queue)
		}
		for _, f := range cands {
			if f.b.strikes == nil {
				f.b.strikes = make([]uint8, len(f.b.pubs))
			}
			f.b.strikes[f.i]++
		}
		if tooLarge(cause) && !sized {
			// Most likely the largest: publish it alone first. (With the
			// limit known, the first over it in publish order is.)
			slices.SortStableFunc(cands, func(a, b flight) int {
				return len(b.b.pubs[b.i].Body) - len(a.b.pubs[a.i].Body)
			})
		}
		p.cfg.Logger.Warn("amqp: broker refused one of the unconfirmed messages; publishing the suspects one at a time",
			"suspects", len(cands), "reason", cause)
		p.suspects = append(cands, p.suspects...)
		return s.requeue(innocent, queue)
	}
	if s.probing {
		// Lost for another reason: the suspect stays first in line.
		var back []flight
		for _, tag := range tags {
			back = append(back, s.inflight[tag])
		}
		clear(s.inflight)
		p.suspects = append(back, p.suspects...)
		return queue
	}
	var redo []flight
	for _, tag := range tags {
		redo = append(redo, s.inflight[tag])
	}
	clear(s.inflight)
	return s.requeue(redo, queue)
}

// clearSuspects ends a round of probing once the refused message was
// found: the other suspects did not cause that close and are returned, to
// go back to pipelined publishing, unless they were suspects of an
// earlier close too: those stay suspects.
func (p *Publisher) clearSuspects() []flight {
	var keep, back []flight
	for _, f := range p.suspects {
		if f.b.strikes[f.i] >= 2 {
			keep = append(keep, f)
		} else {
			back = append(back, f)
		}
	}
	p.suspects = keep
	return back
}

// requeue puts the messages of redo (in publish order) back into their
// batches' todo lists; batches that were not queued go in front of queue,
// oldest first.
func (s *pubSession) requeue(redo []flight, queue []*batch) []*batch {
	var front []*batch
	for _, f := range redo {
		f.b.todo = append(f.b.todo, f.i)
		if !f.b.queued {
			f.b.queued = true
			front = append(front, f.b)
		}
	}
	for _, b := range front {
		slices.Sort(b.todo)
	}
	for _, b := range queue {
		slices.Sort(b.todo)
	}
	return append(front, queue...)
}
