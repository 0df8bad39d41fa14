package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/busline/bus"
)

// A batch of which the broker refuses some records (here one over the
// broker's message.max.bytes, and what shares its request) fails with a
// *bus.PublishError listing exactly the records that were not stored:
// every other one is consumed, and bus.Unpublished returns the ones to
// resend. Before, the error said only how many failed.
func TestPartialBatchSaysWhichFailed(t *testing.T) {
	t.Parallel()
	const limit = 100_000
	c := newFake(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(limit)}))
	cfg := testConfig(c.ListenAddrs())
	topic := newTopic(t, cfg, 3)
	pub := newTestPublisher(t, cfg)
	msgs := make([]*bus.Message, 12)
	for i := range msgs {
		msgs[i] = &bus.Message{ID: fmt.Sprint("m", i), Key: fmt.Sprint("k", i), Body: []byte("small")}
	}
	const big = 5
	msgs[big].Body = make([]byte, 2*limit)
	err := pub.Publish(context.Background(), topic, msgs...)
	var pe *bus.PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("Publish = %v, want a *bus.PublishError", err)
	}
	if !slices.Contains(pe.Failed, big) || len(pe.Failed) == len(msgs) || !slices.IsSorted(pe.Failed) {
		t.Fatalf("Failed = %v; want the big record %d among them, sorted, and not all", pe.Failed, big)
	}
	resend := bus.Unpublished(err, msgs)
	if len(resend) != len(pe.Failed) {
		t.Fatalf("Unpublished returned %d messages, Failed lists %d", len(resend), len(pe.Failed))
	}
	t.Logf("failed: %v (%v)", pe.Failed, err)

	var mu sync.Mutex
	got := map[string]bool{}
	done := make(chan struct{})
	want := len(msgs) - len(pe.Failed)
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got[m.ID] = true
		if len(got) == want {
			close(done)
		}
		return nil
	}, bus.Group("g"))
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("consumed %v; want every message not in Failed %v", got, pe.Failed)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, i := range pe.Failed {
		if got[msgs[i].ID] {
			t.Errorf("message %d is listed as failed but was stored", i)
		}
	}
}
