package watermill_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/benchrun"
	"github.com/busline/bus/redispubsub"
)

// Redis has no Watermill pub/sub adapter; the reference here is rueidis,
// whose auto-pipelining (concurrent commands share one connection's round
// trips) is what busline's publish coalescing is measured against.

const redisAddr = "127.0.0.1:6379"

// BenchmarkRedisPublishCoalesce measures, per client, PUBLISH in pipelined
// batches of 100 against 16 goroutines each publishing one message and
// waiting for its reply, alternating the two in 8 rounds (batch first in
// odd rounds), and reports both rates, their ratio (single/batch), the
// process's CPU per message on each side and the single calls' p50/p99.
// rueidis keeps its defaults (auto-pipelining on, client-side caching off);
// busline runs its Redis publisher in both formats. 1 KiB bodies, no
// subscriber on the channel. b.N messages go to each side.
func BenchmarkRedisPublishCoalesce(b *testing.B) {
	body := make([]byte, bodySize)
	b.Run("rueidis", func(b *testing.B) {
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr}, DisableCache: true})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ch := uniqueName(b)
		publish := func(ctx context.Context) rueidis.Completed {
			return c.B().Publish().Channel(ch).Message(rueidis.BinaryString(body)).Build()
		}
		alternateCoalesce(b,
			func(ctx context.Context, n int) error {
				cmds := make(rueidis.Commands, n)
				for i := range cmds {
					cmds[i] = publish(ctx)
				}
				for _, r := range c.DoMulti(ctx, cmds...) {
					if err := r.Error(); err != nil {
						return err
					}
				}
				return nil
			},
			func(ctx context.Context) error { return c.Do(ctx, publish(ctx)).Error() })
	})
	for _, format := range []string{redispubsub.FormatRaw, redispubsub.FormatStructured} {
		b.Run("busline-"+format, func(b *testing.B) {
			p, err := bus.OpenPublisher(context.Background(), "redis://"+redisAddr+"/0?format="+format)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			topic := uniqueName(b)
			alternateCoalesce(b,
				func(ctx context.Context, n int) error {
					msgs := make([]*bus.Message, n)
					for i := range msgs {
						msgs[i] = &bus.Message{Body: body}
					}
					return p.Publish(ctx, topic, msgs...)
				},
				func(ctx context.Context) error { return p.Publish(ctx, topic, &bus.Message{Body: body}) })
		})
	}
}

// alternateCoalesce runs b.N messages through batch (n messages a call, up
// to 100) and b.N through single from 16 goroutines, alternating the two in
// rounds with internal/benchrun (whose metrics it reports), and reports the
// single calls' p50/p99.
func alternateCoalesce(b *testing.B, batch func(context.Context, int) error, single func(context.Context) error) {
	const rounds, callers = 8, 16
	ctx := context.Background()
	var lat benchrun.Latencies
	runBatch := func(n int) {
		for i := 0; i < n; i += 100 {
			if err := batch(ctx, min(100, n-i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	runSingle := func(n int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					start := time.Now()
					if err := single(ctx); err != nil {
						b.Error(err)
						return
					}
					lat.Add(time.Since(start))
				}
			})
		}
		wg.Wait()
	}
	runBatch(1000) // warm up: connections
	runSingle(1000)
	lat.Reset()
	benchrun.Alternate(b, rounds, runBatch, runSingle)
	lat.Report(b, "single-")
}
