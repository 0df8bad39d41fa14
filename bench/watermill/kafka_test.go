package watermill_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/busline/bus"
	"github.com/busline/bus/kafka"
)

// Kafka: an in-process kfake cluster (3 brokers), topics of 4 partitions,
// 1 KiB values, acks=all on both sides. busline uses its kafka-go based
// adapter with its defaults (produce requests sent on demand) and a
// commit interval of 100ms; Watermill uses watermill-kafka (sarama) with its
// default sync publisher config plus RequiredAcks=WaitForAll, and its
// default subscriber config plus oldest-offset start and a 100ms commit
// interval.

const kafkaPartitions = 4

var cluster struct {
	once    sync.Once
	fake    *kfake.Cluster
	brokers []string
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster.fake != nil {
		cluster.fake.Close()
	}
	os.Exit(code)
}

func kafkaBrokers(b *testing.B) []string {
	cluster.once.Do(func() {
		cluster.fake, cluster.err = kfake.NewCluster(kfake.NumBrokers(3))
		if cluster.err == nil {
			cluster.brokers = cluster.fake.ListenAddrs()
		}
	})
	if cluster.err != nil {
		b.Fatalf("start kfake: %v", cluster.err)
	}
	return cluster.brokers
}

func buslineKafkaConfig(b *testing.B) kafka.Config {
	return kafka.Config{
		Brokers:           kafkaBrokers(b),
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond,
		RebalanceTimeout:  10 * time.Second,
		CommitInterval:    100 * time.Millisecond,
		MaxWait:           100 * time.Millisecond,
		DialTimeout:       5 * time.Second,
	}
}

// kafkaTopic creates a topic for one run (and its dead letter topic, which
// a busline subscription checks for).
func kafkaTopic(b *testing.B) string {
	name := uniqueName(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, t := range []string{name, name + bus.DeadLetterSuffix} {
		if err := kafka.CreateTopic(ctx, buslineKafkaConfig(b), t, kafkaPartitions, 0); err != nil {
			b.Fatalf("create topic %s: %v", t, err)
		}
	}
	return name
}

func buslineKafkaPublisher(b *testing.B) *kafka.Publisher {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := kafka.NewPublisher(ctx, buslineKafkaConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// keyMeta is the Watermill metadata entry that carries the record key.
const keyMeta = "key"

func watermillKafkaPublisher(b *testing.B) *wmkafka.Publisher {
	sc := wmkafka.DefaultSaramaSyncPublisherConfig()
	sc.Producer.RequiredAcks = sarama.WaitForAll
	p, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{
		Brokers: kafkaBrokers(b),
		Marshaler: wmkafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) {
			return m.Metadata.Get(keyMeta), nil
		}),
		OverwriteSaramaConfig: sc,
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

func keyed(key string, body []byte) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), body)
	m.Metadata.Set(keyMeta, key)
	return m
}

func BenchmarkKafkaPublishBatch100(b *testing.B) {
	const size = 100
	b.Run("busline", func(b *testing.B) {
		topic := kafkaTopic(b)
		p := buslineKafkaPublisher(b)
		ctx := context.Background()
		reportRate(b, b.N, publishBatches(b, size, func(n int) error {
			ms := make([]*bus.Message, n)
			for j := range ms {
				ms[j] = &bus.Message{Key: fmt.Sprint("k", j), Body: payload()}
			}
			return p.Publish(ctx, topic, ms...)
		}))
	})
	b.Run("watermill", func(b *testing.B) {
		topic := kafkaTopic(b)
		p := watermillKafkaPublisher(b)
		reportRate(b, b.N, publishBatches(b, size, func(n int) error {
			ms := make([]*message.Message, n)
			for j := range ms {
				ms[j] = keyed(fmt.Sprint("k", j), payload())
			}
			return p.Publish(topic, ms...)
		}))
	})
}

func BenchmarkKafkaPublish16(b *testing.B) {
	const workers = 16
	b.Run("busline", func(b *testing.B) {
		topic := kafkaTopic(b)
		p := buslineKafkaPublisher(b)
		ctx := context.Background()
		reportRate(b, b.N, publishConcurrent(b, workers, func(i int64) error {
			return p.Publish(ctx, topic, &bus.Message{Key: fmt.Sprint("k", i%64), Body: payload()})
		}))
	})
	b.Run("watermill", func(b *testing.B) {
		topic := kafkaTopic(b)
		p := watermillKafkaPublisher(b)
		reportRate(b, b.N, publishConcurrent(b, workers, func(i int64) error {
			return p.Publish(topic, keyed(fmt.Sprint("k", i%64), payload()))
		}))
	})
}

// kafkaConsumer starts a library's group member on topic feeding s and
// returns once the subscription is set up (Watermill's joins the group
// in the background; the warm-up message tells when it reads).
type kafkaConsumer func(b *testing.B, topic string, s *sink)

// buslineKafkaConsumer is a group member with concurrency 8, as in
// busline's own benchmark.
func buslineKafkaConsumer(b *testing.B, topic string, s *sink) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := kafka.NewSubscriber(ctx, buslineKafkaConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Close() })
	startBusline(b, sub, topic, s, bus.Group("bench"), bus.Concurrency(8))
}

// watermillKafkaConsumer is a group member that handles each message in
// its own goroutine, as Watermill's Router does; Watermill hands out one
// message per partition at a time and marks its offset on Ack.
func watermillKafkaConsumer(b *testing.B, topic string, s *sink) {
	sc := wmkafka.DefaultSaramaSubscriberConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	sub, err := wmkafka.NewSubscriber(wmkafka.SubscriberConfig{
		Brokers:               kafkaBrokers(b),
		Unmarshaler:           wmkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: sc,
		ConsumerGroup:         "bench",
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); _ = sub.Close() })
	go consumeWatermill(msgs, s)
}

// rawKafkaFeeder writes n records with stamped 1 KiB values over 256 keys,
// in batches of 100, with a plain kafka-go writer (acks=all).
func rawKafkaFeeder(b *testing.B, topic string) func(n int, body func() []byte) error {
	w := &kafkago.Writer{Addr: kafkago.TCP(kafkaBrokers(b)...), Balancer: kafkago.Murmur2Balancer{}, BatchTimeout: time.Millisecond,
		BatchSize: 1000, RequiredAcks: kafkago.RequireAll, Transport: &kafkago.Transport{}}
	b.Cleanup(func() { _ = w.Close() })
	var seq int
	return func(n int, body func() []byte) error {
		for i := 0; i < n; i += 100 {
			ms := make([]kafkago.Message, min(100, n-i))
			for j := range ms {
				ms[j] = kafkago.Message{Topic: topic, Key: []byte(fmt.Sprint("k", seq%256)), Value: body()}
				seq++
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := w.WriteMessages(ctx, ms...)
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// BenchmarkKafkaConsume isolates the consuming side: the same raw kafka-go
// producer feeds each library's group member, which commits what it
// handled; the timer runs from the first record to the last handled.
func BenchmarkKafkaConsume(b *testing.B) {
	for _, c := range []struct {
		name  string
		start kafkaConsumer
	}{{"busline", buslineKafkaConsumer}, {"watermill", watermillKafkaConsumer}} {
		b.Run(c.name, func(b *testing.B) {
			topic := kafkaTopic(b)
			s := newSink(b.N)
			c.start(b, topic, s)
			feed := rawKafkaFeeder(b, topic)
			// A warm-up record: the member is reading before the timer starts.
			if err := feed(1, warmupPayload); err != nil {
				b.Fatal(err)
			}
			s.waitWarm(b)
			b.ResetTimer()
			start := time.Now()
			fed := make(chan error, 1)
			go func() { fed <- feed(b.N, payload) }()
			s.waitDone(b)
			s.report(b, time.Since(start))
			if err := <-fed; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkKafkaEndToEnd: each library publishes b.N keyed messages in
// batches of 100 with its own publisher while its own group member
// consumes and commits them.
func BenchmarkKafkaEndToEnd(b *testing.B) {
	const batch = 100
	b.Run("busline", func(b *testing.B) {
		topic := kafkaTopic(b)
		s := newSink(b.N)
		buslineKafkaConsumer(b, topic, s)
		p := buslineKafkaPublisher(b)
		ctx := context.Background()
		if err := p.Publish(ctx, topic, &bus.Message{Key: "k0", Body: warmupPayload()}); err != nil {
			b.Fatal(err)
		}
		s.waitWarm(b)
		start := time.Now()
		_ = publishBatches(b, batch, func(n int) error {
			ms := make([]*bus.Message, n)
			for j := range ms {
				ms[j] = &bus.Message{Key: fmt.Sprint("k", j), Body: payload()}
			}
			return p.Publish(ctx, topic, ms...)
		})
		s.waitDone(b)
		s.report(b, time.Since(start))
	})
	b.Run("watermill", func(b *testing.B) {
		topic := kafkaTopic(b)
		s := newSink(b.N)
		watermillKafkaConsumer(b, topic, s)
		p := watermillKafkaPublisher(b)
		if err := p.Publish(topic, keyed("k0", warmupPayload())); err != nil {
			b.Fatal(err)
		}
		s.waitWarm(b)
		start := time.Now()
		_ = publishBatches(b, batch, func(n int) error {
			ms := make([]*message.Message, n)
			for j := range ms {
				ms[j] = keyed(fmt.Sprint("k", j), payload())
			}
			return p.Publish(topic, ms...)
		})
		s.waitDone(b)
		s.report(b, time.Since(start))
	})
}
