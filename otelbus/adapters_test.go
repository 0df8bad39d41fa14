package otelbus_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
	"github.com/busline/bus/kafka"
	"github.com/busline/bus/redispubsub"
)

const (
	amqpURL   = "amqp://guest:guest@127.0.0.1:5672/"
	redisAddr = "127.0.0.1:6379"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if kafkaShared.fake != nil {
		kafkaShared.fake.Close()
	}
	os.Exit(code)
}

func openAdapter(t testing.TB, url string) (bus.Publisher, bus.Subscriber) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := bus.OpenPublisher(ctx, url)
	if err != nil {
		t.Fatalf("OpenPublisher %s: %v", url, err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := bus.OpenSubscriber(ctx, url)
	if err != nil {
		t.Fatalf("OpenSubscriber %s: %v", url, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return pub, sub
}

// amqpTopic is a fresh topic whose exchange and queues are deleted when
// the test ends.
func amqpTopic(t *testing.T) string {
	topic := topicName(t)
	t.Cleanup(func() {
		c, err := amqp091.Dial(amqpURL)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer c.Close()
		for _, name := range []string{topic, topic + bus.DeadLetterSuffix} {
			if ch, err := c.Channel(); err == nil {
				_, _ = ch.QueueDelete(name, false, false, false)
				_ = ch.ExchangeDelete(name, false, false)
				_ = ch.Close()
			}
		}
	})
	return topic
}

func TestTracesAMQP(t *testing.T) {
	_ = amqp.Scheme
	pub, sub := openAdapter(t, amqpURL)
	testTraces(t, newHarness(t), adapter{pub: pub, sub: sub, newTopic: amqpTopic, system: "rabbitmq"})
}

// redisTopic is a fresh channel whose dead letter list is deleted when
// the test ends.
func redisTopic(t *testing.T) string {
	topic := topicName(t)
	t.Cleanup(func() {
		c := goredis.NewClient(&goredis.Options{Addr: redisAddr})
		defer c.Close()
		_ = c.Del(context.Background(), topic+bus.DeadLetterSuffix).Err()
	})
	return topic
}

func TestTracesRedis(t *testing.T) {
	_ = redispubsub.Scheme
	pub, sub := openAdapter(t, "redis://"+redisAddr)
	testTraces(t, newHarness(t), adapter{pub: pub, sub: sub, newTopic: redisTopic, system: "redis"})
}

var kafkaShared struct {
	once sync.Once
	fake *kfake.Cluster
	err  error
}

// kafkaConfig is the Config of a kfake cluster the package's tests
// share, started on first use.
func kafkaConfig(t testing.TB) kafka.Config {
	t.Helper()
	kafkaShared.once.Do(func() { kafkaShared.fake, kafkaShared.err = kfake.NewCluster(kfake.NumBrokers(1)) })
	if kafkaShared.err != nil {
		t.Fatalf("start kfake: %v", kafkaShared.err)
	}
	return kafka.Config{
		Brokers:        kafkaShared.fake.ListenAddrs(),
		CommitInterval: 20 * time.Millisecond,
		MaxWait:        100 * time.Millisecond,
		DialTimeout:    5 * time.Second,
	}
}

// kafkaTopic creates a fresh topic and its dead letter topic.
func kafkaTopic(t *testing.T, cfg kafka.Config) string {
	t.Helper()
	topic := topicName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{topic, topic + bus.DeadLetterSuffix} {
		if err := kafka.CreateTopic(ctx, cfg, name, 2, 0); err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
	return topic
}

func newKafka(t testing.TB, cfg kafka.Config) (*kafka.Publisher, *kafka.Subscriber) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := kafka.NewPublisher(ctx, cfg)
	if err != nil {
		t.Fatalf("kafka.NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := kafka.NewSubscriber(ctx, cfg)
	if err != nil {
		t.Fatalf("kafka.NewSubscriber: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return pub, sub
}

func TestTracesKafka(t *testing.T) {
	cfg := kafkaConfig(t)
	pub, sub := newKafka(t, cfg)
	testTraces(t, newHarness(t), adapter{
		pub: pub, sub: sub,
		newTopic: func(t *testing.T) string { return kafkaTopic(t, cfg) },
		system:   "kafka",
		check: func(t *testing.T, p tracetest.SpanStub) {
			if attr(p, "messaging.destination.partition.id").AsString() == "" {
				t.Errorf("no messaging.destination.partition.id on %v", p.Attributes)
			}
			if _, ok := attrOK(p, "messaging.kafka.offset"); !ok {
				t.Errorf("no messaging.kafka.offset on %v", p.Attributes)
			}
		},
	})
}
