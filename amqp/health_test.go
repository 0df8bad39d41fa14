package amqp_test

import (
	"testing"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

// TestHealthFollowsTheBroker: a publisher and a subscription behind a TCP
// proxy report live, then reconnecting (unhealthy, with the error) while
// the proxy refuses to carry their connections, then live again once it
// does; and closed after Close.
func TestHealthFollowsTheBroker(t *testing.T) {
	px, cfg := proxiedConfig(t, "")
	topic := uniqueTopic(t)
	pub, err := amqp.NewPublisher(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := amqp.NewSubscriber(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	subscribe(t, sub, topic, newCollector().handle, bus.Group("g"))
	reporters := map[string]bus.HealthReporter{"publisher": pub, "subscriber": sub}
	for name, r := range reporters {
		if h := r.Health(); h.State != bus.HealthLive || !h.Healthy(0) {
			t.Fatalf("%s health before the cut: %+v", name, h)
		}
	}

	px.blackhole.Store(true)
	px.cut()
	for name, r := range reporters {
		waitUntil(t, 20*time.Second, name+" reconnecting", func() bool {
			h := r.Health()
			return h.State == bus.HealthReconnecting && !h.Healthy(0) && h.Healthy(time.Hour)
		})
	}
	waitUntil(t, 20*time.Second, "the error of a failed redial", func() bool { return sub.Health().Err != nil })

	px.blackhole.Store(false)
	px.cut() // the connections held unanswered: dial again
	for name, r := range reporters {
		waitUntil(t, 30*time.Second, name+" live again", func() bool {
			h := r.Health()
			return h.State == bus.HealthLive && h.Err == nil
		})
		if n := r.Health().Reconnects; n < 1 {
			t.Errorf("%s counts %d reconnects after a cut", name, n)
		}
	}
	_ = sub.Close()
	_ = pub.Close()
	for name, r := range reporters {
		if h := r.Health(); h.State != bus.HealthClosed || h.Healthy(time.Hour) {
			t.Fatalf("%s health after Close: %+v", name, h)
		}
	}
}
