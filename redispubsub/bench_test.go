package redispubsub_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/benchrun"
	"github.com/busline/bus/redispubsub"
)

// The benchmarks put the adapter side by side with go-redis doing the same
// work on the same server: a 1 KiB message per PUBLISH, and end to end from
// PUBLISH to a handler. Run them with:
//
//	for i in 1 2 3 4 5; do go test -run '^$' -bench . -benchtime 20000x -count 1 ./redispubsub/; done
//
// and take medians. Not -count 5: it runs each variant five times in a
// row, so a drift in machine load lands on one variant and not the others
// (on two shared cores that alone made busline raw look 23% behind go-redis
// end to end). One -count 1 per round puts the variants side by side.

var payload1K = func() []byte {
	b := make([]byte, 1024)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

func benchConfig(format string) redispubsub.Config {
	cfg := standaloneConfig()
	cfg.Format = format
	return cfg
}

func BenchmarkPublish1KiB(b *testing.B) {
	ctx := context.Background()
	b.Run("goredis", func(b *testing.B) {
		c := rawClient(b)
		topic := uniqueTopic(b)
		b.SetBytes(1024)
		for b.Loop() {
			if err := c.Publish(ctx, topic, payload1K).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, format := range []string{redispubsub.FormatRaw, redispubsub.FormatStructured} {
		b.Run("busline-"+format, func(b *testing.B) {
			p := newPublisher(b, benchConfig(format))
			topic := uniqueTopic(b)
			b.SetBytes(1024)
			for b.Loop() {
				if err := p.Publish(ctx, topic, &bus.Message{Body: payload1K}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPublishParallel1KiB(b *testing.B) {
	ctx := context.Background()
	b.Run("goredis", func(b *testing.B) {
		c := rawClient(b)
		topic := uniqueTopic(b)
		b.SetBytes(1024)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Publish(ctx, topic, payload1K).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	for _, format := range []string{redispubsub.FormatRaw, redispubsub.FormatStructured} {
		b.Run("busline-"+format, func(b *testing.B) {
			p := newPublisher(b, benchConfig(format))
			topic := uniqueTopic(b)
			b.SetBytes(1024)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.Publish(ctx, topic, &bus.Message{Body: payload1K}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkEndToEnd1KiB publishes b.N messages one PUBLISH at a time while
// a subscriber counts them in a handler, and stops when the last arrived.
func BenchmarkEndToEnd1KiB(b *testing.B) {
	ctx := context.Background()
	b.Run("goredis", func(b *testing.B) {
		c := rawClient(b)
		topic := uniqueTopic(b)
		ps := c.Subscribe(ctx, topic)
		defer ps.Close()
		if _, err := ps.ReceiveTimeout(ctx, waitLimit); err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		done := make(chan struct{})
		n := int64(b.N)
		go func() {
			for m := range ps.Channel(goredis.WithChannelSize(1024)) {
				if len(m.Payload) > 0 && got.Add(1) == n {
					close(done)
				}
			}
		}()
		b.SetBytes(1024)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := c.Publish(ctx, topic, payload1K).Err(); err != nil {
				b.Fatal(err)
			}
		}
		waitDone(b, done, &got)
	})
	for _, format := range []string{redispubsub.FormatRaw, redispubsub.FormatStructured} {
		b.Run("busline-"+format, func(b *testing.B) {
			cfg := benchConfig(format)
			p := newPublisher(b, cfg)
			topic := uniqueTopic(b)
			var got atomic.Int64
			done := make(chan struct{})
			n := int64(b.N)
			start(b, newSubscriber(b, cfg), topic, func(ctx context.Context, m *bus.Message) error {
				if len(m.Body) > 0 && got.Add(1) == n {
					close(done)
				}
				return nil
			})
			b.SetBytes(1024)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := p.Publish(ctx, topic, &bus.Message{Body: payload1K}); err != nil {
					b.Fatal(err)
				}
			}
			waitDone(b, done, &got)
		})
	}
}

func waitDone(b *testing.B, done <-chan struct{}, got *atomic.Int64) {
	select {
	case <-done:
	case <-time.After(waitLimit):
		b.Fatalf("received %d of %d", got.Load(), b.N)
	}
}

// BenchmarkPublishCoalesce puts the common shape of a service, 16
// goroutines each publishing one message and waiting for its reply, beside
// the same publisher sending batches of 100, in alternating rounds of one
// run so that both share every drift of machine load. It reports both
// rates, their ratio, the CPU the process used per message, the commands
// per round trip of the single publishes, and their latency.
func BenchmarkPublishCoalesce(b *testing.B) {
	for _, format := range []string{redispubsub.FormatStructured, redispubsub.FormatRaw} {
		b.Run(format, func(b *testing.B) { benchCoalesce(b, format) })
	}
}

func benchCoalesce(b *testing.B, format string) {
	const rounds = 8
	ctx := context.Background()
	p := newPublisher(b, benchConfig(format))
	topic := uniqueTopic(b)
	batch := func(n int) {
		for i := 0; i < n; i += 100 {
			msgs := make([]*bus.Message, min(100, n-i))
			for j := range msgs {
				msgs[j] = &bus.Message{Body: payload1K}
			}
			if err := p.Publish(ctx, topic, msgs...); err != nil {
				b.Fatal(err)
			}
		}
	}
	var lat benchrun.Latencies
	single := func(n int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					start := time.Now()
					if err := p.Publish(ctx, topic, &bus.Message{Body: payload1K}); err != nil {
						b.Error(err)
						return
					}
					lat.Add(time.Since(start))
				}
			})
		}
		wg.Wait()
	}
	batch(1000) // warm up the pool's connections
	single(1000)
	lat.Reset()
	alone0, queued0, trips0 := redispubsub.CoalesceStats(p)
	benchrun.Alternate(b, rounds, batch, single)
	alone, queued, trips := redispubsub.CoalesceStats(p)
	alone, queued, trips = alone-alone0, queued-queued0, trips-trips0
	b.ReportMetric(float64(alone+queued)/float64(alone+trips), "single-msgs/trip")
	lat.Report(b, "single-")
}
