package redispubsub_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
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

// BenchmarkPublishers16 is the common shape of a service: 16 goroutines,
// each publishing one message and waiting for Redis, beside the same
// publisher sending batches of 100 in one pipeline (msgs/s reported per
// message either way).
func BenchmarkPublishers16(b *testing.B) {
	ctx := context.Background()
	for _, format := range []string{redispubsub.FormatRaw, redispubsub.FormatStructured} {
		b.Run("busline-"+format+"-16-single", func(b *testing.B) {
			p := newPublisher(b, benchConfig(format))
			topic := uniqueTopic(b)
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.Publish(ctx, topic, &bus.Message{Body: payload1K}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run("busline-"+format+"-batch100", func(b *testing.B) {
			p := newPublisher(b, benchConfig(format))
			topic := uniqueTopic(b)
			batch := make([]*bus.Message, 100)
			n := 0
			for b.Loop() {
				if n%100 == 0 {
					for i := range batch {
						batch[i] = &bus.Message{Body: payload1K}
					}
					if err := p.Publish(ctx, topic, batch...); err != nil {
						b.Fatal(err)
					}
				}
				n++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
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
