package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/busline/bus"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	cfg, err := ParseURL("kafka://u:pw@h1:9092,h2:9093/?sasl=scram-sha-512&acks=one&batch_timeout=5ms&create_topics=true&topic_partitions=6")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Brokers, ",") != "h1:9092,h2:9093" || cfg.Username != "u" || cfg.Password != "pw" ||
		cfg.SASL != SASLScramSHA512 || cfg.Acks != "one" || cfg.BatchTimeout != 5*time.Millisecond || !cfg.CreateTopics || cfg.TopicPartitions != 6 {
		t.Errorf("parsed %+v", cfg)
	}
	for _, tc := range []struct{ url, want string }{
		{"kafka://h:9092/?bogus=1", "unknown URL parameter(s) bogus"},
		{"kafka:///", "names no broker"},
		{"kafka://h/", "not host:port"},
		{"kafka://h:9092/?acks=some", "acks"},
		{"kafka://h:9092/?sasl=gssapi", "sasl"},
		{"kafka://h:9092/orders", "path"},
		{"kafka://h:9092/?heartbeat_interval=10s&session_timeout=6s", "heartbeat_interval"},
		{"kafka://h:9092/?handler_grace=28s", "handler_grace 28s plus heartbeat_interval 3s must be below rebalance_timeout 30s"},
		{"kafka://h:9092/?handler_grace=5s&rebalance_timeout=6s&heartbeat_interval=1s", "rebalance_timeout"},
		{"kafka://h:9092/?max_uncommitted=0", "max_uncommitted"},
		{"amqp://h:9092/", "scheme"},
	} {
		_, err := ParseURL(tc.url)
		if !errors.Is(err, bus.ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "kafka: ") {
			t.Errorf("ParseURL(%q) = %v, want ErrInvalid mentioning %q", tc.url, err, tc.want)
		}
	}
	cfg, err = ParseURL("kafka://h:9092/?handler_grace=2s&max_uncommitted=500")
	if err != nil || cfg.HandlerGrace != 2*time.Second || cfg.MaxUncommitted != 500 {
		t.Errorf("handler_grace and max_uncommitted: %+v, %v", cfg, err)
	}
	if _, err := bus.OpenPublisher(context.Background(), "kafka://u:hunter2@h:9092/?nope=1"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("OpenPublisher with a bad param: %v", err)
	}
}

func TestUnreachableBrokers(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a loopback port nobody listens on
	cfg := Config{Brokers: []string{addr}, DialTimeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := NewPublisher(ctx, cfg); !errors.Is(err, bus.ErrUnreachable) || !strings.HasPrefix(err.Error(), "kafka: ") {
		t.Errorf("NewPublisher: %v, want ErrUnreachable", err)
	}
	if _, err := NewSubscriber(ctx, cfg); !errors.Is(err, bus.ErrUnreachable) {
		t.Errorf("NewSubscriber: %v, want ErrUnreachable", err)
	}
}

func TestUnknownTopic(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	missing := "busline-missing-" + sanitize(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := newTestPublisher(t, cfg).Publish(ctx, missing, bus.NewMessage("t", nil))
	if !errors.Is(err, bus.ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Publish to a missing topic: %v, want ErrNotFound naming it", err)
	}
	err = newTestSubscriber(t, cfg).Subscribe(ctx, missing, func(context.Context, *bus.Message) error { return nil }, bus.Group("g"))
	if !errors.Is(err, bus.ErrNotFound) {
		t.Errorf("Subscribe to a missing topic: %v, want ErrNotFound", err)
	}

	// With create_topics the same Publish creates it.
	ccfg := cfg
	ccfg.CreateTopics = true
	ccfg.TopicPartitions = 2
	created := missing + "-created"
	if err := newTestPublisher(t, ccfg).Publish(ctx, created, bus.NewMessage("t", nil)); err != nil {
		t.Errorf("Publish with create_topics: %v", err)
	}
}

func TestOversizedMessage(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 1)
	p := newTestPublisher(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := p.Publish(ctx, topic, &bus.Message{Body: make([]byte, 2<<20)})
	if !errors.Is(err, bus.ErrTooLarge) {
		t.Errorf("2 MiB body: %v, want ErrTooLarge", err)
	}
	// Headers count too.
	big := strings.Repeat("v", 60<<10)
	m := &bus.Message{Body: make([]byte, 1<<20-100), Metadata: map[string]string{"a": big}}
	if err := p.Publish(ctx, topic, m); !errors.Is(err, bus.ErrTooLarge) {
		t.Errorf("body plus headers over the limit: %v, want ErrTooLarge", err)
	}
	// The broker's own limit is mapped too, when ours is set higher.
	if !realCluster() {
		hcfg := cfg
		hcfg.MaxMessageBytes = 4 << 20
		err := newTestPublisher(t, hcfg).Publish(ctx, topic, &bus.Message{Body: make([]byte, 2<<20)})
		if !errors.Is(err, bus.ErrTooLarge) {
			t.Errorf("over the broker's message.max.bytes: %v, want ErrTooLarge", err)
		}
	}
}

func TestSASL(t *testing.T) {
	t.Parallel()
	fake := newFake(t, kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plainpass"),
		kfake.Superuser("SCRAM-SHA-256", "scram256", "pass256"),
		kfake.Superuser("SCRAM-SHA-512", "scram512", "pass512"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	bad := testConfig(fake.ListenAddrs())
	bad.Username, bad.Password = "plainuser", "wrong-password-xyz"
	_, err := NewPublisher(ctx, bad)
	if !errors.Is(err, bus.ErrPermission) || strings.Contains(err.Error(), "wrong-password-xyz") {
		t.Errorf("bad PLAIN password: %v, want ErrPermission without the password", err)
	}
	bad.SASL = SASLScramSHA256
	if _, err := NewSubscriber(ctx, bad); !errors.Is(err, bus.ErrPermission) {
		t.Errorf("bad SCRAM password: %v, want ErrPermission", err)
	}

	for _, tc := range []struct{ mech, user, pass string }{
		{SASLPlain, "plainuser", "plainpass"},
		{SASLScramSHA256, "scram256", "pass256"},
		{SASLScramSHA512, "scram512", "pass512"},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			cfg := testConfig(fake.ListenAddrs())
			cfg.SASL, cfg.Username, cfg.Password = tc.mech, tc.user, tc.pass
			topic := newTopic(t, cfg, 2)
			got := make(chan *bus.Message, 1)
			subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
				got <- m
				return nil
			}, bus.Group("g"))
			if err := newTestPublisher(t, cfg).Publish(ctx, topic, bus.NewMessage("t", []byte("hi"))); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-got:
				if string(m.Body) != "hi" {
					t.Errorf("body %q", m.Body)
				}
			case <-ctx.Done():
				t.Fatal("message not received over SASL")
			}
		})
	}
}

// A plain kafka-go producer's records are delivered; our records carry
// CloudEvents headers a plain kafka-go consumer can read.
func TestInteropWithPlainKafkaGo(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	got := make(chan *bus.Message, 1)
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
		got <- m
		return nil
	}, bus.Group("interop"))
	// A transport of its own: kafka-go's shared default one may hold
	// metadata from before the topic existed (another run in this process).
	w := &kafkago.Writer{Addr: kafkago.TCP(cfg.Brokers...), Topic: topic, Balancer: &kafkago.Murmur2Balancer{}, BatchTimeout: time.Millisecond,
		Transport: &kafkago.Transport{}}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafkago.Message{Key: []byte("order-1"), Value: []byte(`{"n":1}`), Headers: []kafkago.Header{{Key: "trace", Value: []byte("abc")}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		var km kafkago.Message
		if string(m.Body) != `{"n":1}` || m.Key != "order-1" || m.Metadata["trace"] != "abc" || !m.As(&km) || km.Topic != topic {
			t.Errorf("plain record delivered as %+v", m)
		}
		if want := fmt.Sprintf("%s/%d/%d", topic, km.Partition, km.Offset); m.ID != want {
			t.Errorf("plain record's ID = %q, want its position %q", m.ID, want)
		}
	case <-ctx.Done():
		t.Fatal("plain record not delivered")
	}

	// Our message, read by a plain kafka-go group reader.
	m := &bus.Message{Type: "order.created", Source: "shop", Subject: "order-2", Key: "order-2", ContentType: "application/json",
		Body: []byte(`{"n":2}`), Metadata: map[string]string{"tenant": "t1"}}
	if err := newTestPublisher(t, cfg).Publish(ctx, topic, m); err != nil {
		t.Fatal(err)
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: cfg.Brokers, GroupID: "plain-" + topic, Topic: topic, StartOffset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for {
		km, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("plain reader: %v", err)
		}
		if string(km.Key) != "order-2" {
			continue
		}
		h := map[string]string{}
		for _, x := range km.Headers {
			h[x.Key] = string(x.Value)
		}
		want := map[string]string{"ce_specversion": "1.0", "ce_id": m.ID, "ce_type": "order.created", "ce_source": "shop",
			"ce_subject": "order-2", "content-type": "application/json", "ce_tenant": "t1"}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("header %s = %q, want %q", k, h[k], v)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, h["ce_time"]); err != nil {
			t.Errorf("ce_time %q: %v", h["ce_time"], err)
		}
		// The partition is the Java client's murmur2 choice for the key.
		if p := (kafkago.Murmur2Balancer{}).Balance(km, 0, 1, 2); km.Partition != p || string(km.Value) != `{"n":2}` {
			t.Errorf("partition %d (murmur2 says %d), value %q", km.Partition, p, km.Value)
		}
		return
	}
}
