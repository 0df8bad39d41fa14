package redispubsub_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/busline/bus"
)

// TestLostReplyIsNotResent: Redis carries out a PUBLISH but its reply is
// lost with the connection. The publisher must report the failure and not
// send the command again on a new connection (go-redis would, by default),
// which would hand subscribers a second copy of a message delivered at
// most once. The same for a pipelined batch, which would be resent whole.
func TestLostReplyIsNotResent(t *testing.T) {
	for _, n := range []int{1, 10} {
		t.Run(fmt.Sprintf("messages=%d", n), func(t *testing.T) {
			px := newDownProxy(t, redisAddr)
			cfg := standaloneConfig()
			cfg.Addr = px.l.Addr().String()
			pub := newPublisher(t, cfg)
			sub := newSubscriber(t, standaloneConfig())
			topic := uniqueTopic(t)
			in := newInbox()
			start(t, sub, topic, in.handler)
			ctx := context.Background()
			// Open the connections first (go-redis pipelines have a pool of
			// their own): a reply lost in a handshake publishes nothing.
			if err := pub.Publish(ctx, topic, &bus.Message{Body: []byte("warm-up")}); err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, topic, &bus.Message{Body: []byte("warm-up")}, &bus.Message{Body: []byte("warm-up")}); err != nil {
				t.Fatal(err)
			}
			in.wait(t, 3)

			msgs := make([]*bus.Message, n)
			for i := range msgs {
				msgs[i] = &bus.Message{Body: fmt.Appendf(nil, "lost-reply-%d", i)}
			}
			px.loseReply.Store(true)
			if err := pub.Publish(ctx, topic, msgs...); !errors.Is(err, bus.ErrUnreachable) {
				t.Fatalf("Publish whose reply was lost = %v, want an error wrapping ErrUnreachable", err)
			}
			if px.loseReply.Load() {
				t.Fatal("the proxy lost no reply: the test did not run")
			}
			// Whatever was sent in that Publish reached Redis before it
			// returned: once a later message arrives, every copy is in.
			if err := pub.Publish(ctx, topic, &bus.Message{Body: []byte("marker")}); err != nil {
				t.Fatalf("Publish after the lost reply: %v", err)
			}
			waitUntil(t, "the marker", in.poke, func() bool {
				all := in.all()
				return string(all[len(all)-1].Body) == "marker"
			})
			seen := map[string]int{}
			for _, m := range in.all() {
				seen[string(m.Body)]++
			}
			for _, m := range msgs {
				if c := seen[string(m.Body)]; c > 1 {
					t.Errorf("%s delivered %d times, want at most once", m.Body, c)
				}
			}
		})
	}
}
