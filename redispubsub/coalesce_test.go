package redispubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/busline/bus"
)

// Concurrent single publishes share pipelines, yet each caller gets its
// own outcome: PublishCount callers on topics with different numbers of
// subscribers each get their own topic's count, and a caller whose ctx
// has ended gets its ctx error while the others go through.
func TestCoalescedPublishesKeepTheirOwnOutcome(t *testing.T) {
	cfg := standaloneConfig()
	pub := newPublisher(t, cfg)
	sub := newSubscriber(t, cfg)
	topics := []string{uniqueTopic(t), uniqueTopic(t), uniqueTopic(t)}
	for i, topic := range topics { // topic i has i+1 subscribers
		for range i + 1 {
			start(t, sub, topic, newInbox().handler)
		}
	}
	const rounds = 50
	var wg sync.WaitGroup
	errs := make(chan error, rounds*len(topics)*2)
	for range rounds {
		for i, topic := range topics {
			wg.Add(2)
			go func() {
				defer wg.Done()
				n, err := pub.PublishCount(context.Background(), topic, &bus.Message{Body: []byte("x")})
				if err != nil || n != i+1 {
					errs <- fmt.Errorf("PublishCount on topic %d = %d, %v; want %d", i, n, err, i+1)
				}
			}()
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				if err := pub.Publish(ctx, topic, &bus.Message{Body: []byte("gone")}); !errors.Is(err, context.Canceled) {
					errs <- fmt.Errorf("Publish with an ended ctx = %v, want context.Canceled", err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
