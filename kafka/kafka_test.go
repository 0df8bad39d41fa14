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
