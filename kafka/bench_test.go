package kafka

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/benchrun"
)

// Benchmarks run busline and raw kafka-go side by side on the same cluster
// with the same settings: 1 KiB values, acks=all, murmur2 keys; busline with
// its defaults, kafka-go's Writer with a 100µs batch timeout. Run them
// bounded, e.g.
//
//	go test -run '^$' -bench . -benchtime 20000x ./kafka/

const benchBody = 1024

func benchConfig(b *testing.B) Config {
	cfg := testConfig(brokers(b))
	cfg.CommitInterval = 100 * time.Millisecond
	return cfg
}

func rawWriter(cfg Config) *kafkago.Writer {
	return &kafkago.Writer{Addr: kafkago.TCP(cfg.Brokers...), Balancer: kafkago.Murmur2Balancer{}, BatchTimeout: 100 * time.Microsecond,
		BatchSize: 1000, RequiredAcks: kafkago.RequireAll, Transport: &kafkago.Transport{}}
}

func BenchmarkPublishBatch100(b *testing.B) {
	body := make([]byte, benchBody)
	run := func(b *testing.B, publish func(ctx context.Context, n int) error) {
		ctx := context.Background()
		b.SetBytes(benchBody)
		b.ResetTimer()
		for i := 0; i < b.N; i += 100 {
			if err := publish(ctx, min(100, b.N-i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	}
	b.Run("busline", func(b *testing.B) {
		cfg := benchConfig(b)
		topic := newTopic(b, cfg, testPartitions)
		p := newTestPublisher(b, cfg)
		run(b, func(ctx context.Context, n int) error {
			msgs := make([]*bus.Message, n)
			for j := range msgs {
				msgs[j] = &bus.Message{Key: fmt.Sprint("k", j), Body: body}
			}
			return p.Publish(ctx, topic, msgs...)
		})
	})
	b.Run("kafkago", func(b *testing.B) {
		cfg := benchConfig(b)
		topic := newTopic(b, cfg, testPartitions)
		w := rawWriter(cfg)
		defer w.Close()
		run(b, func(ctx context.Context, n int) error {
			msgs := make([]kafkago.Message, n)
			for j := range msgs {
				msgs[j] = kafkago.Message{Topic: topic, Key: []byte(fmt.Sprint("k", j)), Value: body}
			}
			return w.WriteMessages(ctx, msgs...)
		})
	})
	// The same records with the CloudEvents headers busline writes, built
	// by hand: the work busline does, minus busline.
	b.Run("kafkago-same-headers", func(b *testing.B) {
		cfg := benchConfig(b)
		topic := newTopic(b, cfg, testPartitions)
		w := rawWriter(cfg)
		defer w.Close()
		run(b, func(ctx context.Context, n int) error {
			msgs := make([]kafkago.Message, n)
			for j := range msgs {
				msgs[j] = sameHeaders(topic, fmt.Sprint("k", j), body)
			}
			return w.WriteMessages(ctx, msgs...)
		})
	})
}

// sameHeaders builds by hand the record busline writes for a message with
// a key and a body: the five CloudEvents headers, a fresh ID, the time.
func sameHeaders(topic, key string, body []byte) kafkago.Message {
	now := time.Now()
	return kafkago.Message{Topic: topic, Key: []byte(key), Value: body, Time: now, Headers: []kafkago.Header{
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_id", Value: []byte(uuid.NewString())},
		{Key: "ce_source", Value: []byte(bus.DefaultSource)},
		{Key: "ce_type", Value: []byte(bus.DefaultType)},
		{Key: "ce_time", Value: []byte(now.UTC().Format(time.RFC3339Nano))},
	}}
}

func BenchmarkPublish16Concurrent(b *testing.B) {
	body := make([]byte, benchBody)
	run := func(b *testing.B, publish func(ctx context.Context, i int64) error) {
		ctx := context.Background()
		var next atomic.Int64
		var wg sync.WaitGroup
		var lat benchrun.Latencies // of each call
		b.SetBytes(benchBody)
		b.ResetTimer()
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
					start := time.Now()
					if err := publish(ctx, i); err != nil {
						b.Error(err)
						return
					}
					lat.Add(time.Since(start))
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		lat.Report(b, "")
	}
	b.Run("busline", func(b *testing.B) {
		cfg := benchConfig(b)
		topic := newTopic(b, cfg, testPartitions)
		p := newTestPublisher(b, cfg)
		run(b, func(ctx context.Context, i int64) error {
			return p.Publish(ctx, topic, &bus.Message{Key: fmt.Sprint("k", i%64), Body: body})
		})
	})
	b.Run("kafkago", func(b *testing.B) {
		cfg := benchConfig(b)
		topic := newTopic(b, cfg, testPartitions)
		w := rawWriter(cfg)
		defer w.Close()
		run(b, func(ctx context.Context, i int64) error {
			return w.WriteMessages(ctx, kafkago.Message{Topic: topic, Key: []byte(fmt.Sprint("k", i%64)), Value: body})
		})
	})
	b.Run("kafkago-same-headers", func(b *testing.B) {
		cfg := benchConfig(b)
		topic := newTopic(b, cfg, testPartitions)
		w := rawWriter(cfg)
		defer w.Close()
		run(b, func(ctx context.Context, i int64) error {
			return w.WriteMessages(ctx, sameHeaders(topic, fmt.Sprint("k", i%64), body))
		})
	})
}

// feed publishes n keyed 1 KiB messages with the raw writer, in batches.
func feed(b *testing.B, cfg Config, topic string, n int) {
	w := rawWriter(cfg)
	defer w.Close()
	body := make([]byte, benchBody)
	for i := 0; i < n; i += 100 {
		msgs := make([]kafkago.Message, 0, 100)
		for j := i; j < min(i+100, n); j++ {
			msgs = append(msgs, kafkago.Message{Topic: topic, Key: []byte(fmt.Sprint("k", j%256)), Value: body, Time: time.Now()})
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			b.Error(err)
			return
		}
	}
}

// BenchmarkGroupConsume publishes b.N messages while a group member
// consumes and commits them; latency is from the record's timestamp to the
// handler.
func BenchmarkGroupConsume(b *testing.B) {
	b.Run("busline", func(b *testing.B) {
		cfg := benchConfig(b)
		topic := newTopic(b, cfg, testPartitions)
		var lat benchrun.Latencies
		var n atomic.Int64
		done := make(chan struct{})
		s := newTestSubscriber(b, cfg)
		subscribe(b, s, topic, func(_ context.Context, m *bus.Message) error {
			var km kafkago.Message
			m.As(&km)
			lat.Add(time.Since(km.Time))
			if n.Add(1) == int64(b.N) {
				close(done)
			}
			return nil
		}, bus.Group("bench"), bus.Concurrency(8))
		b.SetBytes(benchBody)
		b.ResetTimer()
		go feed(b, cfg, topic, b.N)
		waitDone(b, done)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		lat.Report(b, "")
	})
	b.Run("kafkago", func(b *testing.B) {
		cfg := benchConfig(b)
		topic := newTopic(b, cfg, testPartitions)
		var lat benchrun.Latencies
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: cfg.Brokers, GroupID: "bench", Topic: topic, StartOffset: kafkago.FirstOffset,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: cfg.MaxWait, CommitInterval: cfg.CommitInterval, HeartbeatInterval: cfg.HeartbeatInterval, SessionTimeout: cfg.SessionTimeout})
		defer r.Close()
		b.SetBytes(benchBody)
		b.ResetTimer()
		go feed(b, cfg, topic, b.N)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for range b.N {
			km, err := r.FetchMessage(ctx)
			if err != nil {
				b.Fatal(err)
			}
			lat.Add(time.Since(km.Time))
			if err := r.CommitMessages(ctx, km); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		lat.Report(b, "")
	})
}

// BenchmarkSlowHandler consumes with a 1ms handler on 4 partitions: the
// rate follows the concurrency setting, not the partition count.
func BenchmarkSlowHandler(b *testing.B) {
	for _, conc := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			cfg := benchConfig(b)
			topic := newTopic(b, cfg, testPartitions)
			var n atomic.Int64
			done := make(chan struct{})
			subscribe(b, newTestSubscriber(b, cfg), topic, func(context.Context, *bus.Message) error {
				time.Sleep(time.Millisecond) // the simulated slow handler
				if n.Add(1) == int64(b.N) {
					close(done)
				}
				return nil
			}, bus.Group("slow"), bus.Concurrency(conc))
			b.ResetTimer()
			go feed(b, cfg, topic, b.N)
			waitDone(b, done)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func waitDone(b *testing.B, done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("consumption did not finish within 5 minutes")
	}
}

// BenchmarkPublishCoalesce measures, on one publisher and topic in one
// process, Publish with batches of 100 and 16 goroutines each publishing
// one message per call, alternating the two in rounds (batch first in odd
// rounds, single first in even ones) so that both see the same machine.
// It reports each variant's rate and their ratio (single/batch), the
// p50/p99 latency of a single-message Publish call, and per variant the
// CPU time per message (user+system of the whole process: busline,
// kafka-go and, without BUS_KAFKA_BROKERS, the kfake brokers), the produce
// requests per second and the records per request. b.N messages go to
// each variant. Run it bounded, e.g.
//
//	go test -run '^$' -bench PublishCoalesce -benchtime 40000x -count 3 ./kafka/
func BenchmarkPublishCoalesce(b *testing.B) {
	const rounds = 8
	cfg := benchConfig(b)
	topic := newTopic(b, cfg, testPartitions)
	p := newTestPublisher(b, cfg)
	body := make([]byte, benchBody)
	ctx := context.Background()
	batch := func(n int) {
		for i := 0; i < n; i += 100 {
			msgs := make([]*bus.Message, min(100, n-i))
			for j := range msgs {
				msgs[j] = &bus.Message{Key: fmt.Sprint("k", j), Body: body}
			}
			if err := p.Publish(ctx, topic, msgs...); err != nil {
				b.Fatal(err)
			}
		}
	}
	var lat benchrun.Latencies
	single := func(n int) {
		sixteenCallers(b, n, &lat, func(i int64) error {
			return p.Publish(ctx, topic, &bus.Message{Key: fmt.Sprint("k", i%64), Body: body})
		})
	}
	batch(1000) // warm up: connections to every leader
	single(1000)
	lat.Reset()
	var reqs, recs [2]int64
	counted := func(v int, f func(int)) func(int) {
		return func(n int) {
			q0, r0 := p.prod.requests.Load(), p.prod.records.Load()
			f(n)
			reqs[v] += p.prod.requests.Load() - q0
			recs[v] += p.prod.records.Load() - r0
		}
	}
	b.SetBytes(2 * benchBody)
	batchSide, singleSide := benchrun.Alternate(b, rounds, counted(0, batch), counted(1, single))
	for v, s := range []struct {
		name string
		side benchrun.Side
	}{{"batch", batchSide}, {"single", singleSide}} {
		b.ReportMetric(float64(reqs[v])/s.side.Wall.Seconds(), s.name+"-reqs/s")
		b.ReportMetric(float64(recs[v])/float64(reqs[v]), s.name+"-recs/req")
	}
	lat.Report(b, "single-")
}

// BenchmarkPublishCoalesceKgo is BenchmarkPublishCoalesce with franz-go's
// kgo client in place of busline, on the same cluster, topic layout, keys
// and bodies: batches of 100 through one ProduceSync against 16 goroutines
// each producing one record and waiting for it. kgo is set to send as soon
// as a broker connection is free (no linger, as busline) and, as busline's
// default, not to compress (its default, snappy, shrinks these zero-filled
// bodies to almost nothing); it keeps its defaults otherwise, among them
// the idempotent producer, which lets it have up to 5 produce requests in
// flight per broker (busline: 1). It shows what a client built for
// throughput reaches on these brokers, and so how much of the single/batch
// ratio the brokers leave to any client. Run it as
// BenchmarkPublishCoalesce, e.g.
//
//	go test -run '^$' -bench 'PublishCoalesce' -benchtime 40000x -count 3 ./kafka/
func BenchmarkPublishCoalesceKgo(b *testing.B) {
	const rounds = 8
	cfg := benchConfig(b)
	topic := newTopic(b, cfg, testPartitions)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	body := make([]byte, benchBody)
	ctx := context.Background()
	batch := func(n int) {
		for i := 0; i < n; i += 100 {
			recs := make([]*kgo.Record, min(100, n-i))
			for j := range recs {
				recs[j] = &kgo.Record{Key: []byte(fmt.Sprint("k", j)), Value: body}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
		}
	}
	var lat benchrun.Latencies
	single := func(n int) {
		sixteenCallers(b, n, &lat, func(i int64) error {
			return cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint("k", i%64)), Value: body}).FirstErr()
		})
	}
	batch(1000) // warm up: connections to every leader, producer ID
	single(1000)
	lat.Reset()
	b.SetBytes(2 * benchBody)
	benchrun.Alternate(b, rounds, batch, single)
	lat.Report(b, "single-")
}

// sixteenCallers has 16 goroutines make n publish calls between them (i
// numbers the call, from 1), recording each call's latency in lat; a call
// that fails reports its error and stops its goroutine.
func sixteenCallers(b *testing.B, n int, lat *benchrun.Latencies, publish func(i int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				start := time.Now()
				if err := publish(i); err != nil {
					b.Error(err)
					return
				}
				lat.Add(time.Since(start))
			}
		})
	}
	wg.Wait()
}
