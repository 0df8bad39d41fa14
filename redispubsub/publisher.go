package redispubsub

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/ce"
	"github.com/busline/bus/internal/health"
	"github.com/busline/bus/internal/lifecycle"
)

// Publisher publishes messages with PUBLISH (SPUBLISH in sharded mode). It
// is safe for concurrent use. It implements bus.Publisher,
// bus.ReceiverCounter, bus.Shutdowner, bus.CapabilityReporter and bus.Aser.
type Publisher struct {
	cfg    Config
	client goredis.UniversalClient
	life   *lifecycle.State
	co     *coalescer      // shares round trips among concurrent single publishes
	health *health.Tracker // observed from each publish
}

var (
	_ bus.Publisher          = (*Publisher)(nil)
	_ bus.ReceiverCounter    = (*Publisher)(nil)
	_ bus.Shutdowner         = (*Publisher)(nil)
	_ bus.CapabilityReporter = (*Publisher)(nil)
	_ bus.Aser               = (*Publisher)(nil)
)

// NewPublisher connects to the Redis server or cluster cfg names and checks
// that it answers (a PING, bounded by ctx and cfg.DialTimeout): a wrong
// password gives an error wrapping bus.ErrPermission, an unreachable server
// one wrapping bus.ErrUnreachable.
func NewPublisher(ctx context.Context, cfg Config) (*Publisher, error) {
	cfg = cfg.withDefaults()
	c, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p := &Publisher{cfg: cfg, client: c, life: lifecycle.New(), health: health.NewTracker(bus.HealthLive)}
	p.co = newCoalescer(p)
	return p, nil
}

// encode returns the wire form of m.
func (p *Publisher) encode(m *bus.Message) []byte {
	if p.cfg.Format == FormatRaw {
		return m.Body
	}
	return ce.MarshalStructured(m)
}

func (p *Publisher) publishCmd(ctx context.Context, c goredis.Cmdable, topic string, payload []byte) *goredis.IntCmd {
	if *p.cfg.Sharded {
		return c.SPublish(ctx, topic, payload)
	}
	return c.Publish(ctx, topic, payload)
}

// Publish sends msgs to the channel topic: one PUBLISH per message, in one
// pipeline when there are several, in order. Concurrent calls of one
// message each share pipelines: a call made while another is waiting for
// Redis goes out with the others made meanwhile; each still returns with
// its own reply. It returns nil once Redis has
// replied to every one, which means Redis has handed each message to the
// subscribers connected at that moment; nobody is stored for later. Publish
// fills empty ID, Time, Source and Type in place. A Body over cfg.MaxBody is
// an error wrapping bus.ErrTooLarge. After Close it returns bus.ErrClosed.
func (p *Publisher) Publish(ctx context.Context, topic string, msgs ...*bus.Message) error {
	_, err := p.publish(ctx, topic, msgs)
	return err
}

// PublishCount publishes msg like Publish and returns the number of
// subscribers Redis delivered it to (the PUBLISH or SPUBLISH reply). In
// cluster mode without sharding, Redis counts only the subscribers of the
// node that took the PUBLISH, so there PublishCount fails with an error
// wrapping bus.ErrUnsupported and publishes nothing (Capabilities reports
// no ReceiverCount).
func (p *Publisher) PublishCount(ctx context.Context, topic string, msg *bus.Message) (int, error) {
	if !capabilities(p.cfg).ReceiverCount {
		return 0, fmt.Errorf("redispubsub: publish count: %w: a Redis Cluster without sharding counts only one node's subscribers; use sharded=true or Publish",
			bus.ErrUnsupported)
	}
	n, err := p.publish(ctx, topic, []*bus.Message{msg})
	return int(n), err
}

// publish is send, observed for Health.
func (p *Publisher) publish(ctx context.Context, topic string, msgs []*bus.Message) (int64, error) {
	n, err := p.send(ctx, topic, msgs)
	p.health.Observe(err)
	return n, err
}

func (p *Publisher) send(ctx context.Context, topic string, msgs []*bus.Message) (int64, error) {
	leave, err := p.life.Enter()
	if err != nil {
		return 0, fmt.Errorf("redispubsub: publish: %w", err)
	}
	defer leave()
	if err := driver.PreparePublish(topic, msgs, p.cfg.MaxBody); err != nil {
		return 0, fmt.Errorf("redispubsub: publish to %q: %w", topic, err)
	}
	switch len(msgs) {
	case 0:
		return 0, nil
	case 1:
		n, err := p.co.publish(ctx, topic, p.encode(msgs[0]))
		if err != nil {
			return 0, wrapErr(fmt.Sprintf("publish to %q", topic), err)
		}
		return n, nil
	}
	pipe := p.client.Pipeline()
	cmds := make([]*goredis.IntCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = p.publishCmd(ctx, pipe, topic, p.encode(m))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// A command with a reply was published; say which were not.
		var failed []int
		var first error
		for i, c := range cmds {
			if c.Err() != nil {
				if first == nil {
					first = wrapErr(fmt.Sprintf("publish message %d of %d to %q", i, len(msgs), topic), c.Err())
				}
				failed = append(failed, i)
			}
		}
		switch {
		case first == nil:
			return 0, wrapErr(fmt.Sprintf("publish %d messages to %q", len(msgs), topic), err)
		case len(failed) < len(msgs):
			return 0, &bus.PublishError{Failed: failed, Err: first}
		}
		return 0, first
	}
	var total int64
	for _, c := range cmds {
		total += c.Val()
	}
	return total, nil
}

// Capabilities reports what the adapter guarantees under this
// publisher's configuration; see the package doc.
func (p *Publisher) Capabilities() bus.Capabilities { return capabilities(p.cfg) }

// As sets target to the go-redis client: *goredis.UniversalClient always,
// and **goredis.Client or **goredis.ClusterClient for the matching mode.
func (p *Publisher) As(target any) bool { return asClient(p.client, target) }

// Close waits for Publish calls in flight, then closes the connections. It
// is idempotent; later calls return the first call's result.
func (p *Publisher) Close() error {
	p.health.Closed()
	return p.life.Close(p.release)
}

// Health reports whether the last publish reached Redis (see bus.Health):
// reconnecting, with the error, from a publish that could not reach it
// until one that does. go-redis reconnects on the next command by itself.
func (p *Publisher) Health() bus.Health { return p.health.Health() }

// Shutdown is Close that stops waiting for Publish calls in flight when ctx
// ends.
func (p *Publisher) Shutdown(ctx context.Context) error {
	p.health.Closed()
	return p.life.Shutdown(ctx, p.release)
}

func (p *Publisher) release() error {
	p.co.close()
	if err := p.client.Close(); err != nil {
		return wrapErr("close", err)
	}
	return nil
}

func asClient(c goredis.UniversalClient, target any) bool {
	switch t := target.(type) {
	case *goredis.UniversalClient:
		*t = c
		return true
	case **goredis.Client:
		cc, ok := c.(*goredis.Client)
		if ok {
			*t = cc
		}
		return ok
	case **goredis.ClusterClient:
		cc, ok := c.(*goredis.ClusterClient)
		if ok {
			*t = cc
		}
		return ok
	}
	return false
}

func capabilities(cfg Config) bus.Capabilities {
	return bus.Capabilities{
		Broadcast:    true,
		OrderedByKey: true,
		Patterns:     !*cfg.Sharded,
		// Without sharding, a cluster node counts only its own subscribers.
		ReceiverCount: *cfg.Sharded || !cfg.Cluster,
	}
}
