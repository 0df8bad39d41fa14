package mem

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/health"
	"github.com/busline/bus/internal/lifecycle"
	"github.com/busline/bus/internal/opener"
	"github.com/busline/bus/internal/pipeline"
	"github.com/busline/bus/internal/subrun"
	"github.com/busline/bus/internal/urlparam"
)

// Scheme is the URL scheme of the in-process broker.
const Scheme = "mem"

// DefaultMaxMessageBytes is the largest Body Publish accepts by default.
const DefaultMaxMessageBytes = 1 << 20

func init() {
	driver.Register(Scheme, opener.Funcs[Config, *Publisher, *Subscriber]{
		Parse:         ParseURL,
		NewPublisher:  func(_ context.Context, c Config) (*Publisher, error) { return NewPublisher(c), nil },
		NewSubscriber: func(_ context.Context, c Config) (*Subscriber, error) { return NewSubscriber(c), nil },
	})
}

// Broker is an in-process message broker. Publishers and subscribers of
// one Broker see each other; separate Brokers share nothing. A Broker
// needs no closing: it holds only memory.
type Broker struct {
	mu     sync.Mutex
	topics map[string]*topic
	dead   map[string][]*bus.Message // dead letters by dead letter topic
}

type topic struct {
	groups    map[string]*queue
	broadcast map[*queue]struct{}
}

// NewBroker returns an empty broker.
func NewBroker() *Broker {
	return &Broker{topics: map[string]*topic{}, dead: map[string][]*bus.Message{}}
}

// deadLetter publishes m to the dead letter topic and also keeps it, so
// that a dead letter is never lost for want of a subscriber.
func (b *Broker) deadLetter(topic string, m *bus.Message) {
	b.publish(topic, m)
	b.mu.Lock()
	b.dead[topic] = append(b.dead[topic], m.Clone())
	b.mu.Unlock()
}

// TakeDeadLetters returns and forgets the messages dead-lettered to the
// given dead letter topic, oldest first.
func (b *Broker) TakeDeadLetters(topic string) []*bus.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.dead[topic]
	delete(b.dead, topic)
	return d
}

var named = struct {
	sync.Mutex
	m map[string]*Broker
}{m: map[string]*Broker{}}

// Named returns the process-wide broker with the given name, creating it on
// first use. mem:// URLs name their broker by host: "mem://" is Named("")
// and "mem://orders" is Named("orders").
func Named(name string) *Broker {
	named.Lock()
	defer named.Unlock()
	b, ok := named.m[name]
	if !ok {
		b = NewBroker()
		named.m[name] = b
	}
	return b
}

func (b *Broker) topic(name string) *topic {
	t, ok := b.topics[name]
	if !ok {
		t = &topic{groups: map[string]*queue{}, broadcast: map[*queue]struct{}{}}
		b.topics[name] = t
	}
	return t
}

// publish hands a copy of m to every group and broadcast subscriber of the
// topic and returns how many received it.
func (b *Broker) publish(name string, m *bus.Message) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.topics[name]
	if !ok {
		return 0
	}
	n := 0
	for _, q := range t.groups {
		q.push(deliverable(m, name))
		n++
	}
	for q := range t.broadcast {
		q.push(deliverable(m, name))
		n++
	}
	return n
}

func deliverable(m *bus.Message, topic string) *bus.Message {
	c := m.Clone()
	c.Delivery.Topic = topic
	return c
}

// attach returns the queue a new subscription reads: its group's, created
// on first use and kept from then on, or a fresh private one.
func (b *Broker) attach(name, group string) *queue {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topic(name)
	if group == "" {
		q := newQueue()
		t.broadcast[q] = struct{}{}
		return q
	}
	q, ok := t.groups[group]
	if !ok {
		q = newQueue()
		t.groups[group] = q
	}
	q.members++
	return q
}

// detach ends a subscription: a broadcast queue is dropped with whatever it
// still holds; a group queue stays and keeps collecting messages.
func (b *Broker) detach(name, group string, q *queue) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[name]
	if group == "" {
		delete(t.broadcast, q)
		return
	}
	q.members--
}

// Pending returns how many messages the group holds that no member has
// taken yet (0 for an unknown topic or group).
func (b *Broker) Pending(topic, group string) int {
	b.mu.Lock()
	t, ok := b.topics[topic]
	var q *queue
	if ok {
		q = t.groups[group]
	}
	b.mu.Unlock()
	if q == nil {
		return 0
	}
	return q.len()
}

// Config configures a publisher or subscriber of the in-process broker.
type Config struct {
	// Broker is the broker to use. Default: Named("").
	Broker *Broker
	// MaxMessageBytes is the largest Body Publish accepts; URL parameter
	// max_message_bytes. Default: DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Logger receives logs. Default: none.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Broker == nil {
		c.Broker = Named("")
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	c.Logger = pipeline.Logger(c.Logger)
	return c
}

// ParseURL reads a mem:// URL: the host names the broker (see Named) and
// the query may set max_message_bytes. Other parameters are errors.
func ParseURL(u *url.URL) (Config, error) {
	if u.Scheme != Scheme {
		return Config{}, fmt.Errorf("mem: %w: URL scheme %q is not %q", bus.ErrInvalid, u.Scheme, Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return Config{}, fmt.Errorf("mem: %w: URL path %q is not allowed; name the broker with the host", bus.ErrInvalid, u.Path)
	}
	cfg := Config{Broker: Named(u.Host)}
	p := urlparam.New("mem", u.Query())
	p.Int("max_message_bytes", &cfg.MaxMessageBytes, 1)
	return cfg, p.Err()
}

var capabilities = bus.Capabilities{
	Groups: true, Broadcast: true, DurableGroups: true, OrderedByKey: true,
	AtLeastOnce: true, ReceiverCount: true,
}

// Publisher publishes to an in-process Broker. It is safe for concurrent use.
type Publisher struct {
	cfg     Config
	life    *lifecycle.State
	created time.Time
}

// NewPublisher returns a publisher on cfg.Broker.
func NewPublisher(cfg Config) *Publisher {
	return &Publisher{cfg: cfg.withDefaults(), life: lifecycle.New(), created: time.Now()}
}

// Publish copies each message to every group and broadcast subscriber of
// topic. A topic nobody subscribes to drops the message, as pub/sub does;
// use PublishCount to see how many received it.
func (p *Publisher) Publish(ctx context.Context, topic string, msgs ...*bus.Message) error {
	_, err := p.publish(ctx, topic, msgs)
	return err
}

// PublishCount publishes msg and returns how many subscriptions got it
// (each group counts once).
func (p *Publisher) PublishCount(ctx context.Context, topic string, msg *bus.Message) (int, error) {
	return p.publish(ctx, topic, []*bus.Message{msg})
}

func (p *Publisher) publish(ctx context.Context, topic string, msgs []*bus.Message) (int, error) {
	leave, err := p.life.Enter()
	if err != nil {
		return 0, fmt.Errorf("mem: publish: %w", err)
	}
	defer leave()
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("mem: publish: %w", err)
	}
	if err := driver.PreparePublish(topic, msgs, p.cfg.MaxMessageBytes); err != nil {
		return 0, fmt.Errorf("mem: publish: %w", err)
	}
	n := 0
	for _, m := range msgs {
		n += p.cfg.Broker.publish(topic, m)
	}
	return n, nil
}

// Capabilities reports what the in-process broker guarantees.
func (p *Publisher) Capabilities() bus.Capabilities { return capabilities }

// As sets a **Broker target to the publisher's broker.
func (p *Publisher) As(target any) bool { return driver.AsValue(p.cfg.Broker, target) }

// Close marks the publisher closed; it is idempotent.
func (p *Publisher) Close() error { return p.life.Close(nil) }

// Health is live until Close (an in-process broker never goes away), then
// closed.
func (p *Publisher) Health() bus.Health {
	if p.life.Closed() {
		return bus.Health{State: bus.HealthClosed, Since: p.created}
	}
	return bus.Health{State: bus.HealthLive, Since: p.created}
}

// Shutdown is Close bounded by ctx.
func (p *Publisher) Shutdown(ctx context.Context) error { return p.life.Shutdown(ctx, nil) }

// Subscriber subscribes handlers to an in-process Broker. It is safe for
// concurrent use.
type Subscriber struct {
	cfg    Config
	life   *lifecycle.State
	health health.Set
}

// NewSubscriber returns a subscriber on cfg.Broker.
func NewSubscriber(cfg Config) *Subscriber {
	cfg = cfg.withDefaults()
	return &Subscriber{cfg: cfg, life: lifecycle.New()}
}

// Capabilities reports what the in-process broker guarantees.
func (s *Subscriber) Capabilities() bus.Capabilities { return capabilities }

// As sets a **Broker target to the subscriber's broker.
func (s *Subscriber) As(target any) bool { return driver.AsValue(s.cfg.Broker, target) }

// Subscribe runs h on topic's messages; see bus.Subscriber. With a group,
// the group's queue is created on first use and keeps collecting messages
// while no member runs, for as long as the process lives.
func (s *Subscriber) Subscribe(ctx context.Context, topic string, h bus.Handler, opts ...bus.SubscribeOption) error {
	sub, err := subrun.Begin(ctx, subrun.Params{Pkg: "mem", Life: s.life, Logger: s.cfg.Logger, DeadLetter: s.deadLetter,
		Health: &s.health}, topic, h, opts)
	if err != nil {
		return err
	}
	cfg := sub.Config
	q := s.cfg.Broker.attach(topic, cfg.Group)
	defer s.cfg.Broker.detach(topic, cfg.Group, q)
	stopWake := context.AfterFunc(sub.Work, q.wake)
	defer stopWake()

	sub.Ready()
	// The queue keeps keys in order and holds the messages waiting behind
	// a busy key, so the workers just take what is ready.
	for range cfg.Concurrency {
		sub.Submit("", func() {
			for {
				m := q.pop(sub.Work)
				if m == nil {
					return
				}
				// When the handlers' context ends, the message goes back
				// to the queue at once, whether or not its handler returns.
				// The handler may still hold m: requeue a copy of it.
				var once sync.Once
				d := m.Delivery
				stop := context.AfterFunc(sub.Handlers, func() { once.Do(func() { q.settle(detached(m, d), true) }) })
				abandon := sub.Runner.Handle(sub.Handlers, m) == pipeline.Abandon
				stop()
				once.Do(func() { q.settle(m, abandon) })
			}
		})
	}
	return sub.End(nil)
}

// detached returns a new message with m's envelope and the delivery d,
// without touching m's Delivery, which its handler's pipeline may still be
// writing.
func detached(m *bus.Message, d bus.Delivery) *bus.Message {
	return &bus.Message{ID: m.ID, Type: m.Type, Source: m.Source, Subject: m.Subject, Time: m.Time,
		ContentType: m.ContentType, Key: m.Key, Metadata: m.Metadata, Body: m.Body, Delivery: d}
}

func (s *Subscriber) deadLetter(ctx context.Context, topic string, m *bus.Message) error {
	if err := driver.PreparePublish(topic, []*bus.Message{m}, 0); err != nil {
		return err
	}
	s.cfg.Broker.deadLetter(topic, m)
	return nil
}

// Close stops every subscription, waits for running handlers (at most
// bus.DefaultCloseTimeout) and is idempotent. Messages a group had not
// delivered stay in its queue for the next member.
func (s *Subscriber) Close() error {
	s.health.Close()
	return s.life.Close(nil)
}

// Health is live while the Subscriber is open (an in-process broker never
// goes away), closed after Close.
func (s *Subscriber) Health() bus.Health { return s.health.Health() }

// Shutdown is Close bounded by ctx: handlers still running when it ends
// have their context cancelled.
func (s *Subscriber) Shutdown(ctx context.Context) error {
	s.health.Close()
	return s.life.Shutdown(ctx, nil)
}
