package amqp_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

// The benchmarks do the same durable work with busline and with the raw
// client side by side: 1 KiB persistent messages to a durable queue on the
// default exchange, with publisher confirms. Run them with
//
//	go test -run xxx -bench . -benchtime 20000x ./amqp/

const benchBody = 1024

func benchQueue(b *testing.B) string {
	q := uniqueTopic(b)
	ch := rawChannel(b)
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	return q
}

func payload() []byte { return make([]byte, benchBody) }

func reportRate(b *testing.B, n int, d time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds(), "msgs/s")
}

// benchRounds is how many rounds BenchmarkEndToEnd and
// BenchmarkPublishConcurrent run: each round runs every variant once, in
// turn, in one process, so that a drift in machine load hits every variant
// alike (go test's -count runs one variant N times before the next). Set
// it with the environment variable BENCH_ROUNDS; default 1. Repeated
// variants are named "variant#01", "variant#02" by the testing package;
// scripts/bench-amqp.sh takes the medians.
func benchRounds(b *testing.B) int {
	n, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// variant is one side of a side-by-side benchmark.
type variant struct {
	name string
	run  func(*testing.B)
}

// alternate runs every variant once per round, in turn.
func alternate(b *testing.B, vs ...variant) {
	for range benchRounds(b) {
		for _, v := range vs {
			b.Run(v.name, v.run)
		}
	}
}

// rawConfirmChannel is a raw channel in confirm mode with its confirms.
func rawConfirmChannel(b *testing.B) (*amqp091.Channel, chan amqp091.Confirmation) {
	ch := rawChannel(b)
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	return ch, ch.NotifyPublish(make(chan amqp091.Confirmation, 20000))
}

func BenchmarkPublishBatch(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run("busline/batch="+itoa(size), func(b *testing.B) {
			buslineBatch(b, newPublisher(b, mustConfig(b, "topology=workqueue")), benchQueue(b), size)
		})
		b.Run("raw/batch="+itoa(size), func(b *testing.B) { rawBatch(b, size, false) })
		b.Run("raw-same-envelope/batch="+itoa(size), func(b *testing.B) { rawBatch(b, size, true) })
	}
}

// rawBatch publishes in batches with the raw client; with envelope, each
// message carries the same properties and headers busline writes.
func rawBatch(b *testing.B, size int, envelope bool) {
	q := benchQueue(b)
	ch, confirms := rawConfirmChannel(b)
	body := payload()
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += size {
		n := min(size, b.N-i)
		for range n {
			if err := ch.PublishWithContext(ctx, "", q, true, false, rawPublishing(body, envelope)); err != nil {
				b.Fatal(err)
			}
		}
		for range n {
			if c := <-confirms; !c.Ack {
				b.Fatal("nack")
			}
		}
	}
	reportRate(b, b.N, time.Since(start))
}

// rawPublishing is a persistent message with body; with envelope it
// carries the same properties and headers busline writes.
func rawPublishing(body []byte, envelope bool) amqp091.Publishing {
	p := amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: body}
	if envelope {
		now := time.Now()
		p.MessageId = uuid.NewString()
		p.Timestamp = now
		p.Type = bus.DefaultType
		p.AppId = bus.DefaultSource
		p.Headers = amqp091.Table{"cloudEvents_specversion": "1.0", "cloudEvents_time": now.UTC().Format(time.RFC3339Nano)}
	}
	return p
}

// BenchmarkPublishConcurrent compares 16 goroutines each publishing one
// message at a time on one Publisher (p50_ms and p99_ms are the latencies
// of their Publish calls) with the same Publisher publishing batches of 100,
// alternating in rounds (benchRounds).
func BenchmarkPublishConcurrent(b *testing.B) {
	const workers = 16
	alternate(b,
		variant{"busline/16-single-publishers", func(b *testing.B) {
			q := benchQueue(b)
			singlePublishers(b, newPublisher(b, mustConfig(b, "topology=workqueue")), q, workers)
		}},
		variant{"busline/batch=100", func(b *testing.B) {
			q := benchQueue(b)
			buslineBatch(b, newPublisher(b, mustConfig(b, "topology=workqueue")), q, 100)
		}},
		// The raw client's own ceiling for 16 messages in flight: 16
		// goroutines, each on its own confirming channel, each waiting for
		// its message's confirm before the next. busline's 16 publishers
		// share one channel; this says what the broker allows either way.
		variant{"raw/16-channels-one-confirm-each", func(b *testing.B) {
			q := benchQueue(b)
			body := payload()
			chans := make([]*amqp091.Channel, workers)
			confs := make([]chan amqp091.Confirmation, workers)
			for w := range workers {
				chans[w], confs[w] = rawConfirmChannel(b)
			}
			b.ResetTimer()
			start := time.Now()
			dealOut(b, workers, func(w int) error {
				if err := chans[w].PublishWithContext(context.Background(), "", q, true, false, amqp091.Publishing{
					DeliveryMode: amqp091.Persistent, Body: body}); err != nil {
					return err
				}
				if c := <-confs[w]; !c.Ack {
					return errors.New("nack")
				}
				return nil
			})
			reportRate(b, b.N, time.Since(start))
		}},
		// The most any client gets from the broker with 16 messages
		// awaiting a confirm: one goroutine keeps a window of 16 on one
		// channel, publishing the next the moment a confirm arrives, with
		// no hand-off between callers. Its ratio to raw/batch=100 (ref2 in
		// scripts/bench-amqp.sh) is the broker's bound on the ratio of 16
		// single publishers to batches of 100.
		variant{"raw/one-channel-16-in-flight", func(b *testing.B) {
			q := benchQueue(b)
			ch, confirms := rawConfirmChannel(b)
			body := payload()
			sent := 0
			publish := func() {
				if err := ch.PublishWithContext(context.Background(), "", q, true, false, amqp091.Publishing{
					DeliveryMode: amqp091.Persistent, Body: body}); err != nil {
					b.Fatal(err)
				}
				sent++
			}
			b.ResetTimer()
			start := time.Now()
			for sent < min(workers, b.N) {
				publish()
			}
			wait := time.NewTimer(time.Minute)
			defer wait.Stop()
			for range b.N {
				wait.Reset(time.Minute)
				select {
				case c := <-confirms:
					if !c.Ack {
						b.Fatal("nack")
					}
				case <-wait.C:
					b.Fatalf("no confirm within a minute (%d sent)", sent)
				}
				if sent < b.N {
					publish()
				}
			}
			reportRate(b, b.N, time.Since(start))
		}},
		variant{"raw/batch=100", func(b *testing.B) { rawBatch(b, 100, false) }},
		variant{"raw/one-confirm-per-message", func(b *testing.B) {
			q := benchQueue(b)
			ch, confirms := rawConfirmChannel(b)
			body := payload()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := ch.PublishWithContext(context.Background(), "", q, true, false, amqp091.Publishing{
					DeliveryMode: amqp091.Persistent, Body: body}); err != nil {
					b.Fatal(err)
				}
				if c := <-confirms; !c.Ack {
					b.Fatal("nack")
				}
			}
			reportRate(b, b.N, time.Since(start))
		}},
	)
}

// buslineBatch publishes b.N messages to q in batches of size.
func buslineBatch(b *testing.B, pub *amqp.Publisher, q string, size int) {
	body := payload()
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += size {
		n := min(size, b.N-i)
		ms := make([]*bus.Message, n)
		for j := range ms {
			ms[j] = &bus.Message{Body: body}
		}
		if err := pub.Publish(ctx, q, ms...); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, b.N, time.Since(start))
}

// singlePublishers has workers goroutines publish b.N single messages to q
// between them, each Publish waiting for its own confirm, and reports the
// rate and the p50 and p99 latency of a Publish call.
func singlePublishers(b *testing.B, pub *amqp.Publisher, q string, workers int) {
	body := payload()
	lats := make([][]time.Duration, workers)
	b.ResetTimer()
	start := time.Now()
	dealOut(b, workers, func(w int) error {
		t := time.Now()
		if err := pub.Publish(context.Background(), q, &bus.Message{Body: body}); err != nil {
			return err
		}
		lats[w] = append(lats[w], time.Since(t))
		return nil
	})
	reportRate(b, b.N, time.Since(start))
	reportLatency(b, slices.Concat(lats...))
}

// dealOut runs b.N calls of send among workers goroutines (w is the
// goroutine's number) and returns when all are done; a goroutine whose
// call fails reports the error and stops.
func dealOut(b *testing.B, workers int, send func(w int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := send(w); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkPublishersSweep shows where the broker saturates: busline with
// 1, 16 and 256 concurrent single-message publishers on one queue, classic
// and quorum. Its numbers bound what any client reaches with that many
// messages awaiting a confirm.
func BenchmarkPublishersSweep(b *testing.B) {
	for _, qt := range []string{amqp.QueueClassic, amqp.QueueQuorum} {
		for _, workers := range []int{1, 16, 256} {
			b.Run(qt+"/publishers="+itoa(workers), func(b *testing.B) {
				q := uniqueTopic(b)
				singlePublishers(b, newPublisher(b, mustConfig(b, "topology=workqueue&queue_type="+qt)), q, workers)
			})
		}
	}
}

// stamped returns a 1 KiB body that starts with the current time.
func stamped() []byte {
	p := payload()
	binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
	return p
}

func latency(body []byte) time.Duration {
	return time.Duration(time.Now().UnixNano() - int64(binary.BigEndian.Uint64(body)))
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}

// BenchmarkEndToEnd publishes in batches of 100 while one subscriber acks
// every message; latency is publish to handler. Every variant has the same
// prefetch, 64: busline with bus.Concurrency(16), whose prefetch is 4 × 16
// (the handlers and the messages waiting behind a busy key), the raw
// client with one consumer goroutine acking each delivery. With a handler
// that does nothing, the prefetch is what sets the flow: the broker sends
// at most that many unacked messages. The variants alternate in rounds
// (benchRounds). busline-prefetch-256 is busline with bus.Concurrency(64),
// the prefetch this benchmark used before: it shows what a larger window
// does to throughput and latency.
func BenchmarkEndToEnd(b *testing.B) {
	const batch, prefetch = 100, 64
	alternate(b,
		variant{"busline", func(b *testing.B) { buslineEndToEnd(b, batch, prefetch/4, 0) }},
		variant{"busline-prefetch-256", func(b *testing.B) { buslineEndToEnd(b, batch, 64, 0) }},
		variant{"raw", func(b *testing.B) { rawEndToEnd(b, batch, prefetch, false, 0) }},
		variant{"raw-same-envelope", func(b *testing.B) { rawEndToEnd(b, batch, prefetch, true, 0) }},
	)
}

// BenchmarkEndToEndAtRate is BenchmarkEndToEnd at a fixed offered load,
// 4,000 msgs/s (20 messages every 5 ms), below what either side reaches.
// BenchmarkEndToEnd publishes as fast as confirms allow, so the queue
// grows whenever the consumer is slower than the publisher, and its
// latency mostly measures that backlog; here nothing queues up, and the
// latency (publish to handler) is that of the path a message takes:
// publish, confirm, delivery, handler, ack.
func BenchmarkEndToEndAtRate(b *testing.B) {
	const batch, prefetch, every = 20, 64, 5 * time.Millisecond
	alternate(b,
		variant{"busline", func(b *testing.B) { buslineEndToEnd(b, batch, prefetch/4, every) }},
		variant{"raw", func(b *testing.B) { rawEndToEnd(b, batch, prefetch, false, every) }},
		variant{"raw-same-envelope", func(b *testing.B) { rawEndToEnd(b, batch, prefetch, true, every) }},
	)
}

// pacer returns a function that waits, when every is not zero, until the
// next multiple of every since the first call, so that batches go out at
// a fixed rate.
func pacer(every time.Duration) func() {
	if every == 0 {
		return func() {}
	}
	var next time.Time
	return func() {
		if next.IsZero() {
			next = time.Now()
		}
		time.Sleep(time.Until(next))
		next = next.Add(every)
	}
}

// buslineEndToEnd is BenchmarkEndToEnd with busline: batches of batch
// messages, one subscription with bus.Concurrency(concurrency).
func buslineEndToEnd(b *testing.B, batch, concurrency int, every time.Duration) {
	q := benchQueue(b)
	cfg := mustConfig(b, "topology=workqueue")
	pub, sub := newPublisher(b, cfg), newSubscriber(b, cfg)
	lat := make([]time.Duration, 0, b.N)
	var mu sync.Mutex
	done := make(chan struct{})
	subscribe(b, sub, q, func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		lat = append(lat, latency(m.Body))
		if len(lat) == b.N {
			close(done)
		}
		mu.Unlock()
		return nil
	}, bus.Group(q), bus.Concurrency(concurrency))
	pace := pacer(every)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += batch {
		pace()
		ms := make([]*bus.Message, min(batch, b.N-i))
		for j := range ms {
			ms[j] = &bus.Message{Body: stamped()}
		}
		if err := pub.Publish(context.Background(), q, ms...); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("not all messages consumed")
	}
	reportRate(b, b.N, time.Since(start))
	mu.Lock()
	reportLatency(b, lat)
	mu.Unlock()
}

// rawEndToEnd is BenchmarkEndToEnd with the raw client: confirmed batches
// on one channel, one consumer with the same prefetch acking each message.
func rawEndToEnd(b *testing.B, batch, prefetch int, envelope bool, every time.Duration) {
	q := benchQueue(b)
	cch := rawChannel(b)
	if err := cch.Qos(prefetch, 0, false); err != nil {
		b.Fatal(err)
	}
	deliveries, err := cch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range deliveries {
			lat = append(lat, latency(d.Body))
			_ = d.Ack(false)
			if len(lat) == b.N {
				return
			}
		}
	}()
	ch, confirms := rawConfirmChannel(b)
	pace := pacer(every)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += batch {
		pace()
		// The batch is made first, then written, as busline's is: each
		// message's latency includes the writes of those before it.
		pubs := make([]amqp091.Publishing, min(batch, b.N-i))
		for j := range pubs {
			pubs[j] = rawPublishing(stamped(), envelope)
		}
		n := len(pubs)
		for _, pub := range pubs {
			if err := ch.PublishWithContext(context.Background(), "", q, true, false, pub); err != nil {
				b.Fatal(err)
			}
		}
		for range n {
			<-confirms
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("not all messages consumed")
	}
	reportRate(b, b.N, time.Since(start))
	reportLatency(b, lat)
}
