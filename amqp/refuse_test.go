//go:build brokerrestart

package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/busline/bus"
)

// lowerMaxMessageSize sets the shared broker's max_message_size to n
// bytes until restore is called or the test ends. Other tests on the
// broker see the limit meanwhile, so tests that call it keep short.
func lowerMaxMessageSize(t *testing.T, n int) (restore func()) {
	t.Helper()
	was := strings.TrimSpace(rabbitmqctlOut(t, "eval", "application:get_env(rabbit, max_message_size)."))
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if v, ok := strings.CutPrefix(was, "{ok,"); ok {
				rabbitmqctl(t, "eval", fmt.Sprintf("application:set_env(rabbit, max_message_size, %s).", strings.TrimSuffix(v, "}")))
			} else {
				rabbitmqctl(t, "eval", "application:unset_env(rabbit, max_message_size).")
			}
		})
	}
	t.Cleanup(restore)
	rabbitmqctl(t, "eval", fmt.Sprintf("application:set_env(rabbit, max_message_size, %d).", n))
	return restore
}

// TestBrokerRefusesOversizedMessage lowers the broker's max_message_size
// to 1 MiB and publishes 2 MiB messages among small ones, alone, in
// batches and from concurrent callers on one publisher: every large one
// fails its own Publish at once with bus.ErrTooLarge and the broker's
// reason, every small one is confirmed and delivered, and no call waits
// for its context.
func TestBrokerRefusesOversizedMessage(t *testing.T) {
	// The client-side limit is above the broker's, as with a RabbitMQ 3.x
	// configuration on a 4.x broker.
	cfg := mustConfig(t, "topology=workqueue&max_body_bytes=8388608")
	topic := uniqueTopic(t)
	sub := newSubscriber(t, cfg)
	c := newCollector()
	subscribe(t, sub, topic, c.handle, bus.Group(topic), bus.Concurrency(16))
	restore := lowerMaxMessageSize(t, 1<<20)

	big := func(id string) *bus.Message { return &bus.Message{ID: id, Body: make([]byte, 2<<20)} }
	small := func(id string) *bus.Message { return &bus.Message{ID: id, Body: []byte(id)} }
	var smalls []string
	const bound = 5 * time.Second // far below every call's context
	publish := func(pub bus.Publisher, ms ...*bus.Message) (error, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		start := time.Now()
		err := pub.Publish(ctx, topic, ms...)
		return err, time.Since(start)
	}
	wantTooLarge := func(what string, err error, took time.Duration) {
		t.Helper()
		if !errors.Is(err, bus.ErrTooLarge) || !strings.Contains(err.Error(), "message size") || took > bound {
			t.Errorf("%s: got %v after %v; want bus.ErrTooLarge with the broker's reason within %v", what, err, took, bound)
		}
	}

	t.Run("alone", func(t *testing.T) {
		pub := newPublisher(t, cfg)
		err, took := publish(pub, big("alone-big"))
		wantTooLarge("a large message alone", err, took)
		smalls = append(smalls, "alone-after")
		if err, took := publish(pub, small("alone-after")); err != nil || took > bound {
			t.Errorf("a small message after it: %v after %v", err, took)
		}
	})
	t.Run("batch", func(t *testing.T) {
		pub := newPublisher(t, cfg)
		var ms []*bus.Message
		for i := range 40 {
			id := fmt.Sprintf("batch-%d", i)
			if i == 10 || i == 25 {
				ms = append(ms, big(id))
				continue
			}
			ms = append(ms, small(id))
			smalls = append(smalls, id)
		}
		err, took := publish(pub, ms...)
		wantTooLarge("a batch with two large messages", err, took)
		// The error says which were not published: exactly the two large
		// ones, so a caller resends only those.
		var pe *bus.PublishError
		if !errors.As(err, &pe) || fmt.Sprint(pe.Failed) != "[10 25]" {
			t.Errorf("batch error %v: want a *bus.PublishError with Failed [10 25]", err)
		}
	})
	t.Run("concurrent callers", func(t *testing.T) {
		pub := newPublisher(t, cfg)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 30 {
			id := fmt.Sprintf("caller-%d", i)
			m := small(id)
			if i%10 == 3 {
				m = big(id)
			} else {
				smalls = append(smalls, id)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err, took := publish(pub, m)
				if len(m.Body) > 1<<20 {
					wantTooLarge("a large message of one caller", err, took)
				} else if err != nil || took > bound {
					t.Errorf("small message %s beside large ones: %v after %v", m.ID, err, took)
				}
			}()
		}
		close(start)
		wg.Wait()
	})
	restore()

	c.waitFor(t, 20*time.Second, "every small message", func() bool { return c.hasAll(smalls) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.seen {
		if strings.HasSuffix(id, "-big") || id == "batch-10" || id == "batch-25" || id == "caller-3" || id == "caller-13" || id == "caller-23" {
			t.Errorf("refused message %s was delivered", id)
		}
	}
}
