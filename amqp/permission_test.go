package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/busline/bus"
)

// TestRefusedPublishFailsAlone: a user may write to one topic and not to
// another. On one publisher, concurrent callers publish to both: the
// broker closes the channel (403 ACCESS_REFUSED) at each message to the
// forbidden topic, whose size tells nothing. Every such Publish fails
// with bus.ErrPermission and the broker's reason, every other one is
// confirmed and delivered, and none waits for its context.
func TestRefusedPublishFailsAlone(t *testing.T) {
	t.Parallel()
	allowed, denied := uniqueTopic(t), uniqueTopic(t)
	user := "busline-test-" + uuid.NewString()[:8]
	rabbitmqctl(t, "add_user", user, "pw")
	t.Cleanup(func() { rabbitmqctl(t, "delete_user", user) })
	rabbitmqctl(t, "set_permissions", "-p", "/", user, ".*", "^"+allowed+"$", ".*")

	guest := mustConfig(t, "")
	sub := newSubscriber(t, guest)
	c := newCollector()
	subscribe(t, sub, allowed, c.handle, bus.Group("g"), bus.Concurrency(8))
	subscribe(t, sub, denied, c.handle, bus.Group("g"))

	cfg := guest
	cfg.URL = strings.Replace(cfg.URL, "guest:guest@", user+":pw@", 1)
	pub := newPublisher(t, cfg)

	const bound = 5 * time.Second
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok []string
	start := make(chan struct{})
	for i := range 40 {
		topic, id := allowed, fmt.Sprintf("ok-%d", i)
		if i%8 == 5 {
			topic, id = denied, fmt.Sprintf("denied-%d", i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			began := time.Now()
			err := pub.Publish(ctx, topic, &bus.Message{ID: id, Body: []byte(id)})
			took := time.Since(began)
			switch {
			case topic == denied && (!errors.Is(err, bus.ErrPermission) || !strings.Contains(err.Error(), "ACCESS_REFUSED") || took > bound):
				t.Errorf("publish %s to the forbidden topic: %v after %v; want bus.ErrPermission with the broker's reason within %v", id, err, took, bound)
			case topic == allowed && (err != nil || took > bound):
				t.Errorf("publish %s to the allowed topic: %v after %v", id, err, took)
			case topic == allowed:
				mu.Lock()
				ok = append(ok, id)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	c.waitFor(t, 20*time.Second, "every allowed message", func() bool { return c.hasAll(ok) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.seen {
		if strings.HasPrefix(id, "denied-") {
			t.Errorf("forbidden message %s was delivered", id)
		}
	}
}

// TestPublishRedeclaresDeletedExchange: a topic's exchange deleted under a
// publisher makes the broker close the channel (404 NOT_FOUND) at the next
// message. That message is not failed for it: the next channel declares
// the exchange again and publishes it alone, where it reaches the
// exchange (unroutable now, as nothing is bound to the new exchange);
// once a queue is bound again, publishing goes on.
func TestPublishRedeclaresDeletedExchange(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "")
	topic := uniqueTopic(t)
	pub, sub := newPublisher(t, cfg), newSubscriber(t, cfg)
	c := newCollector()
	subscribe(t, sub, topic, c.handle, bus.Group("g"))
	if err := pub.Publish(ctxT(t), topic, &bus.Message{ID: "before"}); err != nil {
		t.Fatal(err)
	}
	raw := rawChannel(t)
	if err := raw.ExchangeDelete(topic, false, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, topic, &bus.Message{ID: "after-delete"}); !errors.Is(err, bus.ErrUnroutable) {
		t.Fatalf("publish after the exchange was deleted: %v; want bus.ErrUnroutable from the declared-again exchange", err)
	}
	if err := raw.QueueBind(topic+".g", "", topic, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctxT(t), topic, &bus.Message{ID: "rebound"}); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, testTimeout, "the messages before and after", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.seen["before"] > 0 && c.seen["rebound"] > 0
	})
}
