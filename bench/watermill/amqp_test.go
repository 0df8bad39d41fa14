package watermill_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

// RabbitMQ: 1 KiB persistent messages to a durable queue on the default
// exchange, publisher confirms on both sides. busline runs in workqueue
// mode (the queue is the topic); Watermill runs with NewDurableQueueConfig
// (the same queue, named after the topic) and Publish.ConfirmDelivery on.

const rabbitURL = "amqp://guest:guest@127.0.0.1:5672/"

// rabbitQueue declares a durable queue for one run and deletes it, with
// the dead letter queue busline declares beside it, when the run ends.
func rabbitQueue(b *testing.B) string {
	b.Helper()
	q := uniqueName(b)
	conn, err := amqp091.Dial(rabbitURL)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		defer conn.Close()
		for _, name := range []string{q, q + bus.DeadLetterSuffix} {
			c, err := conn.Channel()
			if err != nil {
				b.Logf("cleanup: %v", err)
				return
			}
			if _, err := c.QueueDelete(name, false, false, false); err != nil {
				var ae *amqp091.Error
				if !errors.As(err, &ae) || ae.Code != amqp091.NotFound {
					b.Logf("cleanup %s: %v", name, err)
				}
				continue // a failed delete closes the channel
			}
			_ = c.Close()
		}
	})
	return q
}

func buslineRabbitConfig(b *testing.B) amqp.Config {
	cfg, err := amqp.ParseURL(rabbitURL + "?topology=workqueue")
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

func buslineRabbitPublisher(b *testing.B) *amqp.Publisher {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := amqp.NewPublisher(ctx, buslineRabbitConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// watermillRabbitConfig is Watermill's durable queue config with publisher
// confirms; pool > 0 sets Publish.ChannelPoolSize (0 is Watermill's
// default: a new channel for every Publish call).
func watermillRabbitConfig(pool, prefetch int) wmamqp.Config {
	cfg := wmamqp.NewDurableQueueConfig(rabbitURL)
	cfg.Publish.ConfirmDelivery = true
	cfg.Publish.ChannelPoolSize = pool
	if prefetch > 0 {
		cfg.Consume.Qos.PrefetchCount = prefetch
	}
	return cfg
}

func watermillRabbitPublisher(b *testing.B, pool int) *wmamqp.Publisher {
	p, err := wmamqp.NewPublisher(watermillRabbitConfig(pool, 0), watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

func buslineMessages(n int, body func() []byte) []*bus.Message {
	ms := make([]*bus.Message, n)
	for i := range ms {
		ms[i] = &bus.Message{Body: body()}
	}
	return ms
}

func watermillMessages(n int, body func() []byte) []*message.Message {
	ms := make([]*message.Message, n)
	for i := range ms {
		ms[i] = message.NewMessage(watermill.NewUUID(), body())
	}
	return ms
}

func BenchmarkRabbitPublishBatch100(b *testing.B) {
	const size = 100
	b.Run("busline", func(b *testing.B) {
		q := rabbitQueue(b)
		p := buslineRabbitPublisher(b)
		ctx := context.Background()
		reportRate(b, b.N, publishBatches(b, size, func(n int) error { return p.Publish(ctx, q, buslineMessages(n, payload)...) }))
	})
	b.Run("watermill", func(b *testing.B) {
		q := rabbitQueue(b)
		p := watermillRabbitPublisher(b, 0)
		reportRate(b, b.N, publishBatches(b, size, func(n int) error { return p.Publish(q, watermillMessages(n, payload)...) }))
	})
}

func BenchmarkRabbitPublish16(b *testing.B) {
	const workers = 16
	b.Run("busline", func(b *testing.B) {
		q := rabbitQueue(b)
		p := buslineRabbitPublisher(b)
		ctx := context.Background()
		reportRate(b, b.N, publishConcurrent(b, workers, func(int64) error { return p.Publish(ctx, q, &bus.Message{Body: payload()}) }))
	})
	// Watermill's default opens a channel per Publish call; a pool of 16
	// channels (one per publisher) is its own knob for this case.
	for _, pool := range []int{0, workers} {
		name := "watermill"
		if pool > 0 {
			name = "watermill-pool16"
		}
		b.Run(name, func(b *testing.B) {
			q := rabbitQueue(b)
			p := watermillRabbitPublisher(b, pool)
			reportRate(b, b.N, publishConcurrent(b, workers, func(int64) error {
				return p.Publish(q, message.NewMessage(watermill.NewUUID(), payload()))
			}))
		})
	}
}

// rabbitConsumer starts a library's consumer on q with the given prefetch
// and feeds s; it returns once the subscription is set up.
type rabbitConsumer func(b *testing.B, q string, prefetch int, s *sink)

func buslineRabbitConsumer(b *testing.B, q string, prefetch int, s *sink) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := amqp.NewSubscriber(ctx, buslineRabbitConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Close() })
	startBusline(b, sub, q, s, bus.Group(q), bus.Concurrency(prefetch))
}

// startBusline runs Subscribe in the background until the run ends and
// waits until it is ready.
func startBusline(b *testing.B, sub bus.Subscriber, topic string, s *sink, opts ...bus.SubscribeOption) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	opts = append(opts, bus.OnReady(func() { close(ready) }))
	go func() {
		errc <- sub.Subscribe(ctx, topic, func(_ context.Context, m *bus.Message) error {
			s.take(m.Body)
			return nil
		}, opts...)
	}()
	b.Cleanup(func() {
		cancel()
		select {
		case <-errc:
		case <-time.After(time.Minute):
			b.Error("Subscribe did not return a minute after cancel")
		}
	})
	select {
	case <-ready:
	case err := <-errc:
		b.Fatalf("Subscribe: %v", err)
	case <-time.After(time.Minute):
		b.Fatal("Subscribe not ready after a minute")
	}
}

// watermillRabbitConsumer reads the subscription's channel and handles
// every message in its own goroutine, as Watermill's Router does, acking
// when the handler returns.
func watermillRabbitConsumer(b *testing.B, q string, prefetch int, s *sink) {
	sub, err := wmamqp.NewSubscriber(watermillRabbitConfig(0, prefetch), watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, q)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); _ = sub.Close() })
	go consumeWatermill(msgs, s)
}

func consumeWatermill(msgs <-chan *message.Message, s *sink) {
	for m := range msgs {
		go func() {
			s.take(m.Payload)
			m.Ack()
		}()
	}
}

// BenchmarkRabbitEndToEnd: each library publishes b.N messages in batches
// of 100 with its own publisher while its own subscriber (prefetch 64)
// acks them; the timer stops when the last one is handled.
func BenchmarkRabbitEndToEnd(b *testing.B) {
	const batch, prefetch = 100, 64
	b.Run("busline", func(b *testing.B) {
		q := rabbitQueue(b)
		s := newSink(b.N)
		buslineRabbitConsumer(b, q, prefetch, s)
		p := buslineRabbitPublisher(b)
		ctx := context.Background()
		if err := p.Publish(ctx, q, &bus.Message{Body: warmupPayload()}); err != nil {
			b.Fatal(err)
		}
		s.waitWarm(b)
		start := time.Now()
		_ = publishBatches(b, batch, func(n int) error { return p.Publish(ctx, q, buslineMessages(n, payload)...) })
		s.waitDone(b)
		s.report(b, time.Since(start))
	})
	b.Run("watermill", func(b *testing.B) {
		q := rabbitQueue(b)
		s := newSink(b.N)
		watermillRabbitConsumer(b, q, prefetch, s)
		p := watermillRabbitPublisher(b, 0)
		if err := p.Publish(q, message.NewMessage(watermill.NewUUID(), warmupPayload())); err != nil {
			b.Fatal(err)
		}
		s.waitWarm(b)
		start := time.Now()
		_ = publishBatches(b, batch, func(n int) error { return p.Publish(q, watermillMessages(n, payload)...) })
		s.waitDone(b)
		s.report(b, time.Since(start))
	})
}

// BenchmarkRabbitConsume isolates the consuming side: the same raw
// amqp091 producer (confirmed batches of 100, bare persistent messages)
// feeds each library's subscriber (prefetch 64, ack per message).
func BenchmarkRabbitConsume(b *testing.B) {
	const prefetch = 64
	for _, c := range []struct {
		name  string
		start rabbitConsumer
	}{{"busline", buslineRabbitConsumer}, {"watermill", watermillRabbitConsumer}} {
		b.Run(c.name, func(b *testing.B) {
			q := rabbitQueue(b)
			s := newSink(b.N)
			c.start(b, q, prefetch, s)
			feed := rawRabbitFeeder(b, q)
			if err := feed(1, warmupPayload); err != nil {
				b.Fatal(err)
			}
			s.waitWarm(b)
			b.ResetTimer()
			start := time.Now()
			fed := make(chan error, 1)
			go func() {
				for i := 0; i < b.N; i += 100 {
					if err := feed(min(100, b.N-i), payload); err != nil {
						fed <- err
						return
					}
				}
				fed <- nil
			}()
			s.waitDone(b)
			s.report(b, time.Since(start))
			// The last confirms may come after the last delivery.
			if err := <-fed; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// rawRabbitFeeder publishes n bare persistent messages to q and waits for
// their confirms.
func rawRabbitFeeder(b *testing.B, q string) func(n int, body func() []byte) error {
	conn, err := amqp091.Dial(rabbitURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 128))
	return func(n int, body func() []byte) error {
		for range n {
			if err := ch.PublishWithContext(context.Background(), "", q, false, false,
				amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: body()}); err != nil {
				return err
			}
		}
		for range n {
			select {
			case c, ok := <-confirms:
				if !ok {
					return errors.New("feeder channel closed")
				}
				if !c.Ack {
					return errors.New("feeder message nacked")
				}
			case <-time.After(time.Minute):
				return errors.New("feeder: no confirm within a minute")
			}
		}
		return nil
	}
}
