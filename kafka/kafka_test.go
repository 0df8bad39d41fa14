package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/busline/bus"
)

func TestPublishSubscribeGroup(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, testPartitions)
	pub := newTestPublisher(t, cfg)
	sub := newTestSubscriber(t, cfg)

	var mu sync.Mutex
	got := map[string]*bus.Message{}
	subscribe(t, sub, topic, func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		got[m.ID] = m
		mu.Unlock()
		return nil
	}, bus.Group("g"), bus.Concurrency(4))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sent []*bus.Message
	for i := range 20 {
		m := bus.NewMessage("test.event", []byte(fmt.Sprint(i)))
		m.Key = fmt.Sprint("k", i%5)
		m.Subject = "s"
		m.ContentType = "text/plain"
		m.Metadata = map[string]string{"trace": fmt.Sprint(i)}
		sent = append(sent, m)
	}
	if err := pub.Publish(ctx, topic, sent...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "all messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == len(sent) })
	mu.Lock()
	defer mu.Unlock()
	for _, s := range sent {
		g := got[s.ID]
		if g == nil {
			t.Fatalf("message %s not received", s.ID)
		}
		if string(g.Body) != string(s.Body) || g.Type != s.Type || g.Key != s.Key || g.Subject != s.Subject ||
			g.ContentType != s.ContentType || g.Metadata["trace"] != s.Metadata["trace"] || !g.Time.Equal(s.Time) || g.Source != s.Source {
			t.Errorf("received %+v, sent %+v", g, s)
		}
	}
}

// One call's messages for one partition that add up to more than a record
// batch may hold (max_message_bytes) go out in several produce requests,
// in order.
func TestLargeBatchSplitAcrossRequests(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, testPartitions)
	const n, size = 30, 100 << 10 // 3 MB for one key, against a 1 MiB batch limit
	var mu sync.Mutex
	var order []string
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		order = append(order, m.Metadata["seq"])
		mu.Unlock()
		return nil
	}, bus.Group("g"))
	msgs := make([]*bus.Message, n)
	for i := range msgs {
		msgs[i] = &bus.Message{Key: "one-key", Body: make([]byte, size), Metadata: map[string]string{"seq": fmt.Sprint(i)}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := newTestPublisher(t, cfg).Publish(ctx, topic, msgs...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every message", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == n })
	mu.Lock()
	defer mu.Unlock()
	for i, s := range order {
		if s != fmt.Sprint(i) {
			t.Fatalf("received in the order %v", order)
		}
	}
}

// Every acks level and compression codec, and a batch timeout, deliver
// what was published, bodies and keys intact.
func TestProducerSettings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		set  func(*Config)
	}{
		{"acks=one", func(c *Config) { c.Acks = "one" }},
		{"acks=none", func(c *Config) { c.Acks = "none" }},
		{"compression=gzip", func(c *Config) { c.Compression = "gzip" }},
		{"compression=snappy", func(c *Config) { c.Compression = "snappy" }},
		{"compression=lz4", func(c *Config) { c.Compression = "lz4" }},
		{"compression=zstd", func(c *Config) { c.Compression = "zstd" }},
		{"batch_timeout=2ms", func(c *Config) { c.BatchTimeout = 2 * time.Millisecond }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(brokers(t))
			c.set(&cfg)
			topic := newTopic(t, cfg, testPartitions)
			var mu sync.Mutex
			got := map[string]string{}
			subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
				mu.Lock()
				got[m.Key] = string(m.Body)
				mu.Unlock()
				return nil
			}, bus.Group("g"))
			msgs := make([]*bus.Message, 20)
			for i := range msgs {
				msgs[i] = &bus.Message{Key: fmt.Sprint("k", i), Body: []byte(fmt.Sprint("body-", i, "-", c.name))}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := newTestPublisher(t, cfg).Publish(ctx, topic, msgs...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "every message", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == len(msgs) })
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				if got[m.Key] != string(m.Body) {
					t.Fatalf("key %s: got %q, sent %q", m.Key, got[m.Key], m.Body)
				}
			}
		})
	}
}
