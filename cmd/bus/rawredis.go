package main

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
	"github.com/busline/bus/redispubsub"
)

// rawRedis runs the workload through go-redis alone: PUBLISH of the bare
// body (a batch is one pipeline), and a SUBSCRIBE whose messages are
// handed to -concurrency handlers. Redis pub/sub has no groups.
type rawRedis struct {
	c  *goredis.Client
	ps *goredis.PubSub
}

func openRawRedis(ctx context.Context, rawURL string) (benchClient, error) {
	cfg, err := redispubsub.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if cfg.Cluster || cfg.TLS {
		return nil, usagef("bench: -raw: the raw go-redis client here talks to one server without TLS")
	}
	// Zero durations and pool size are go-redis's defaults; the adapter's
	// are the same or close (5s dial, 3s I/O).
	c := goredis.NewClient(&goredis.Options{
		Addr: cfg.Addr, Username: cfg.Username, Password: cfg.Password, DB: cfg.DB,
		DialTimeout: cfg.DialTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
		PoolSize: cfg.PoolSize, DisableIdentity: true,
	})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("bench: raw go-redis: %s: %w", cfg.Addr, err)
	}
	return &rawRedis{c: c}, nil
}

func (r *rawRedis) subscribe(ctx context.Context, w *workload, h func([]byte)) (<-chan error, error) {
	if w.group != "" {
		return nil, fmt.Errorf("bench: raw go-redis: %w: redis pub/sub has no groups", bus.ErrUnsupported)
	}
	r.ps = r.c.Subscribe(ctx, w.topic)
	if _, err := r.ps.Receive(ctx); err != nil { // the subscription's confirmation
		return nil, fmt.Errorf("bench: raw go-redis: subscribe: %w", err)
	}
	ch := r.ps.Channel(goredis.WithChannelSize(4 * w.concurrency))
	for range w.concurrency {
		// Ends when the PubSub is closed, which closes ch.
		go func() {
			for m := range ch {
				h([]byte(m.Payload))
			}
		}()
	}
	return make(chan error), nil // go-redis reconnects on its own; nothing ends the subscription early
}

func (r *rawRedis) publish(ctx context.Context, topic string, _ int, bodies [][]byte) error {
	if len(bodies) == 1 {
		return r.c.Publish(ctx, topic, bodies[0]).Err()
	}
	_, err := r.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, b := range bodies {
			p.Publish(ctx, topic, b)
		}
		return nil
	})
	return err
}

func (r *rawRedis) close() error {
	if r.ps != nil {
		r.ps.Close()
	}
	return r.c.Close()
}
