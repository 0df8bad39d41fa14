package redispubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/busline/bus"
	"github.com/busline/bus/redispubsub"
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

// A PUBLISH Redis refuses inside a shared pipeline fails its own caller
// and no other: a user allowed only on some channels publishes, from many
// goroutines at once, to channels it may and may not use. Every caller of
// a refused channel gets an error wrapping bus.ErrPermission, every other
// caller nil, and the subscriber receives exactly the allowed messages.
func TestRefusedPublishInsideCoalescedPipelines(t *testing.T) {
	admin := rawClient(t)
	ctx := context.Background()
	allowed, refused := uniqueTopic(t), uniqueTopic(t)
	user := "busline-coalesce-" + allowed[len(allowed)-12:]
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">pw", "~*", "&"+allowed, "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { _ = admin.Do(context.Background(), "ACL", "DELUSER", user).Err() })
	cfg := standaloneConfig()
	cfg.Username, cfg.Password = user, "pw"
	pub := newPublisher(t, cfg)
	sub := newSubscriber(t, standaloneConfig())
	in := newInbox()
	start(t, sub, allowed, in.handler)

	const rounds, callers = 20, 32
	_, queued0, trips0 := redispubsub.CoalesceStats(pub)
	var wg sync.WaitGroup
	errs := make(chan error, rounds*callers)
	for r := range rounds {
		for i := range callers {
			topic, ok := allowed, i%2 == 0
			if !ok {
				topic = refused
			}
			wg.Go(func() {
				err := pub.Publish(ctx, topic, &bus.Message{Body: fmt.Appendf(nil, "%d-%d", r, i)})
				switch {
				case ok && err != nil:
					errs <- fmt.Errorf("publish to the allowed channel: %v", err)
				case !ok && !errors.Is(err, bus.ErrPermission):
					errs <- fmt.Errorf("publish to the refused channel = %v, want ErrPermission", err)
				}
			})
		}
		wg.Wait()
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, queued, trips := redispubsub.CoalesceStats(pub)
	if queued-queued0 <= trips-trips0 {
		t.Fatalf("%d queued publishes went in %d round trips: none shared a pipeline, the test proves nothing", queued-queued0, trips-trips0)
	}
	want := rounds * callers / 2
	in.wait(t, want)
	// One more allowed message, published after all others: once it is
	// in, anything sent twice or to the wrong channel would be too.
	if err := pub.Publish(ctx, allowed, &bus.Message{Body: []byte("last")}); err != nil {
		t.Fatal(err)
	}
	got := in.wait(t, want+1)
	if len(got) != want+1 {
		t.Fatalf("received %d messages, want %d", len(got), want+1)
	}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[string(m.Body)] {
			t.Errorf("%s received twice", m.Body)
		}
		seen[string(m.Body)] = true
	}
}
