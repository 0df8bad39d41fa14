package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/health"
	"github.com/busline/bus/internal/lifecycle"
	"github.com/busline/bus/internal/pipeline"
	"github.com/busline/bus/internal/settle"
	"github.com/busline/bus/internal/subrun"
)

// Subscriber consumes from RabbitMQ. It implements bus.Subscriber,
// bus.Shutdowner, bus.CapabilityReporter and bus.Aser. All its
// subscriptions share one connection; each has its own channel, owned by
// one goroutine that receives deliveries and sends their acks. Dead letters
// are published on a second connection, opened at the first one: a broker
// under a resource alarm stops reading every connection that publishes,
// and acks must not wait behind a dead letter.
type Subscriber struct {
	cfg  Config
	topo topology
	conn *conn
	life *lifecycle.State

	dlMu sync.Mutex
	dl   *Publisher // dead letter publisher, on a connection of its own

	health health.Set // one tracker per running subscription
}

// NewSubscriber connects to the broker cfg names and returns a Subscriber.
// Like NewPublisher, it makes the first connection before it returns.
func NewSubscriber(ctx context.Context, cfg Config) (*Subscriber, error) {
	c, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	if err := dialFirst(ctx, c); err != nil {
		return nil, err
	}
	return &Subscriber{cfg: c.cfg, topo: topology{mode: c.cfg.Topology, queueType: c.cfg.QueueType}, conn: c, life: lifecycle.New()}, nil
}

// Subscribe runs h for every message on topic, as bus.Subscriber
// documents. In exchange mode a subscription without bus.Group reads a
// private queue that gets every message published to the topic after
// OnReady; with bus.Group it shares the group's durable queue
// "<topic>.<group>" (just "<topic>" when the group is named after the
// topic). In work-queue mode bus.Group(topic) is required and the queue is
// the topic's own. The prefetch count is 1 with Concurrency 1, else 4 ×
// Concurrency (see the package doc).
//
// The topic's dead letter topic is declared durable before the first
// message is read, so dead letters are kept until someone reads them.
// Errors before OnReady (bad group, permissions, a queue declared with
// other arguments) are returned; after it, a lost connection or channel is
// re-established with backoff and the subscription resumes on its own,
// retrying (and logging) even errors that look permanent, until ctx ends
// or Close.
func (s *Subscriber) Subscribe(ctx context.Context, topic string, h bus.Handler, opts ...bus.SubscribeOption) error {
	sub, err := subrun.Begin(ctx, subrun.Params{Pkg: "amqp", Life: s.life, Logger: s.cfg.Logger, DeadLetter: s.deadLetter,
		Check: s.topo.checkGroup, Health: &s.health}, topic, h, opts)
	if err != nil {
		return err
	}
	return sub.End(s.run(sub))
}

// run is Subscribe once its arguments are checked.
func (s *Subscriber) run(sub *subrun.Sub) error {
	topic, sc, wctx := sub.Topic, sub.Config, sub.Work
	log := sc.Logger.With("topic", topic, "group", sc.Group)
	var broadcast string // the broadcast queue, kept across reconnects
	if sc.Group == "" {
		broadcast = broadcastQueue(topic)
		defer s.deleteQueue(broadcast, log)
	}
	bo := backoff{min: s.cfg.ReconnectMin, max: s.cfg.ReconnectMax}
	for {
		ss, err := s.open(wctx, sub, broadcast)
		if err != nil {
			if wctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
				return nil
			}
			if !sub.Live() {
				return fmt.Errorf("amqp: subscribe to %q: %w", topic, err)
			}
			// Once live, a subscription does not end on its own: a broker
			// that is starting up refuses logins and vhosts for a while, and
			// an operator can fix a queue or a permission under it.
			sub.Reconnecting(err)
			if permanent(err) {
				log.Error("amqp: cannot resume subscription, retrying", "error", err)
			} else {
				log.Warn("amqp: cannot resume subscription, retrying", "error", err)
			}
			if !sleep(bo.next(), wctx.Done()) {
				return nil
			}
			continue
		}
		if sub.Live() {
			log.Info("amqp: subscription resumed", "queue", ss.queue)
		}
		sub.Ready()
		sub.Resumed()
		bo.reset()
		err = ss.run(wctx, sub.Runner)
		// Handlers still running on a lost channel cannot ack: the broker
		// has already requeued their messages. Cancel them and let go of
		// them; the next channel gets workers of its own.
		ss.sess.End()
		if err == nil || wctx.Err() != nil {
			return nil
		}
		sub.Reconnecting(err)
		log.Warn("amqp: subscription channel lost; reconnecting", "error", err)
		if !sleep(bo.next(), wctx.Done()) {
			return nil
		}
	}
}

// subSession is one subscription channel and its consumer.
type subSession struct {
	topic      string
	queue      string
	tag        string
	ch         *amqp091.Channel
	deliveries <-chan amqp091.Delivery
	closes     chan *amqp091.Error
	settles    chan settleReq
	cork       *corkConn // under ch's connection: acks settled together go in one write
	// sess runs this channel's handlers; ended once the channel is gone.
	sess *subrun.Session
}

// settleReq is a handled delivery's outcome, sent back to the channel
// goroutine, the only one that acks.
type settleReq struct {
	once *settle.Once
	tag  uint64
	ack  bool
}

func (s *Subscriber) open(ctx context.Context, sub *subrun.Sub, broadcast string) (*subSession, error) {
	topic, sc := sub.Topic, sub.Config
	ch, cork, err := s.conn.channel(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*subSession, error) { _ = ch.Close(); return nil, err }
	// The prefetch covers the handlers and the messages waiting behind a
	// busy key, so that one key never leaves the others undelivered.
	prefetch := min(sub.Capacity(), 65535)
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return fail(brokerError("set prefetch", err))
	}
	if _, err := s.topo.declareDurable(ch, sc.DeadLetter, sc.DeadLetter); err != nil {
		return fail(err)
	}
	q, err := s.topo.declareSubscription(ch, topic, sc, broadcast, s.cfg.BroadcastExpires)
	if err != nil {
		return fail(err)
	}
	tag := "busline-" + uuid.NewString()
	closes := ch.NotifyClose(make(chan *amqp091.Error, 1))
	deliveries, err := ch.Consume(q, tag, false, false, false, false, nil)
	if err != nil {
		return fail(brokerError(fmt.Sprintf("consume from queue %q", q), err))
	}
	// settles holds every outcome of the channel's deliveries (at most
	// prefetch), so that a handler never blocks on a channel that is gone.
	return &subSession{topic: topic, queue: q, tag: tag, ch: ch, cork: cork, deliveries: deliveries, closes: closes,
		settles: make(chan settleReq, prefetch), sess: sub.NewSession()}, nil
}

// run receives deliveries and settles them until wctx ends (it drains and
// returns nil) or the channel is lost (it returns why). Outcomes of
// deliveries from a lost channel are dropped: the broker redelivers them.
func (ss *subSession) run(wctx context.Context, r *pipeline.Runner) error {
	defer func() { _ = ss.ch.Close() }()
	for {
		select {
		case d, ok := <-ss.deliveries:
			if !ok {
				return ss.lostError()
			}
			ss.dispatch(d, r)
		case st := <-ss.settles:
			// The outcomes ready now go to the broker in one write.
			ss.cork.hold()
			ss.apply(st)
		more:
			for {
				select {
				case st := <-ss.settles:
					ss.apply(st)
				default:
					break more
				}
			}
			ss.cork.release()
		case e := <-ss.closes:
			if e == nil {
				return errors.New("amqp: channel closed")
			}
			return e
		case <-wctx.Done():
			ss.drain()
			return nil
		}
	}
}

func (ss *subSession) lostError() error {
	select {
	case e := <-ss.closes:
		if e != nil {
			return e
		}
	default:
	}
	return errors.New("amqp: consumer cancelled or channel closed")
}

func (ss *subSession) dispatch(d amqp091.Delivery, r *pipeline.Runner) {
	m, decErr := decode(ss.topic, d)
	settles := ss.settles
	st := settleReq{once: new(settle.Once), tag: d.DeliveryTag}
	hctx := ss.sess.Ctx
	// The prefetch never exceeds the pool's capacity, so there is room.
	ss.sess.Pool.Submit(nil, m.Key, func() {
		var out pipeline.Outcome
		if decErr != nil {
			out = r.Poison(hctx, m, decErr)
		} else {
			out = r.Handle(hctx, m)
		}
		st.ack = out == pipeline.Ack
		settles <- st
	})
}

func (ss *subSession) apply(st settleReq) {
	_ = st.once.Do(func() error {
		if st.ack {
			return ss.ch.Ack(st.tag, false)
		}
		return ss.ch.Nack(st.tag, false, true)
	})
}

// drain stops the consumer, waits for running handlers while settling
// their messages, and leaves unhandled prefetched deliveries to the broker,
// which requeues them when the channel closes. The wait ends with the
// handlers' context (a Shutdown deadline, the grace after ctx ends): the
// messages of handlers still running then are requeued too.
func (ss *subSession) drain() {
	_ = ss.ch.Cancel(ss.tag, false)
	idle := ss.sess.Idle()
	for {
		select {
		case st := <-ss.settles:
			ss.apply(st)
		case <-ss.sess.Ctx.Done():
			return
		case <-idle:
			for {
				select {
				case st := <-ss.settles:
					ss.apply(st)
				default:
					return
				}
			}
		}
	}
}

// deleteQueue deletes a broadcast subscription's queue when the
// subscription ends. If that fails (the connection is gone), the broker
// deletes it after Config.BroadcastExpires without a consumer.
func (s *Subscriber) deleteQueue(q string, log *slog.Logger) {
	// Only on a live connection: dialing here would hold up Close.
	ac := s.conn.live()
	if ac == nil {
		log.Info("amqp: no connection to delete the broadcast queue; the broker will when it expires",
			"queue", q, "expires", s.cfg.BroadcastExpires)
		return
	}
	ch, err := ac.Channel()
	if err == nil {
		_, err = ch.QueueDelete(q, false, false, false)
		_ = ch.Close()
	}
	if err != nil {
		log.Warn("amqp: could not delete the broadcast queue; the broker will when it expires",
			"queue", q, "expires", s.cfg.BroadcastExpires, "error", err)
	}
}

// deadLetter publishes a failed or poison message to its dead letter topic.
func (s *Subscriber) deadLetter(ctx context.Context, topic string, m *bus.Message) error {
	s.dlMu.Lock()
	if s.dl == nil {
		cfg := s.cfg
		cfg.ConnectionName += " dead letters"
		c, err := newConn(cfg)
		if err != nil {
			s.dlMu.Unlock()
			return err
		}
		s.dl = newPublisher(c, true)
	}
	p := s.dl
	s.dlMu.Unlock()
	return p.Publish(ctx, topic, m)
}

// Close stops every subscription, waits for running handlers (up to
// bus.DefaultCloseTimeout), acks what they finished and closes the
// connection. It is idempotent.
func (s *Subscriber) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), bus.DefaultCloseTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Health reports the least healthy of the running subscriptions (see
// bus.Health): reconnecting from the moment a live subscription loses its
// channel or connection until it consumes again.
func (s *Subscriber) Health() bus.Health { return s.health.Health() }

// Shutdown is Close bounded by ctx instead of bus.DefaultCloseTimeout.
func (s *Subscriber) Shutdown(ctx context.Context) error {
	s.health.Close()
	return s.life.Shutdown(ctx, func() error { return s.release(ctx) })
}

func (s *Subscriber) release(ctx context.Context) error {
	s.dlMu.Lock()
	dl := s.dl
	s.dlMu.Unlock()
	var err error
	if dl != nil {
		err = dl.Shutdown(ctx)
	}
	return errors.Join(err, s.conn.close())
}

// Capabilities reports what the subscriber's topology guarantees.
func (s *Subscriber) Capabilities() bus.Capabilities { return capabilities(s.cfg.Topology) }

// As sets target to the subscriber's *amqp091.Connection when target is a
// **amqp091.Connection.
func (s *Subscriber) As(target any) bool {
	s.conn.mu.Lock()
	c := s.conn.c
	s.conn.mu.Unlock()
	return c != nil && driver.AsValue(c, target)
}
