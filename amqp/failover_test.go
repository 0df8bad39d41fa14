package amqp_test

import (
	"testing"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

// TestFailOverToAnotherNode: publisher and subscriber connect to the first
// node (a proxy to the broker); when that node goes away for good, both
// reconnect to the next node in addrs by themselves and carry on.
func TestFailOverToAnotherNode(t *testing.T) {
	first := newProxy(t, "127.0.0.1:5672")
	second := newProxy(t, "127.0.0.1:5672")
	cfg := mustConfig(t, "topology=workqueue&reconnect_min=10ms&reconnect_max=200ms&addrs="+second.addr())
	cfg.URL = "amqp://guest:guest@" + first.addr() + "/"
	topic := uniqueTopic(t)
	pub, err := amqp.NewPublisher(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	sub := newSubscriber(t, cfg)
	c := newCollector()
	subscribe(t, sub, topic, c.handle, bus.Group(topic))
	if err := pub.Publish(ctxT(t), topic, msgs(10, "before")...); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, testTimeout, "messages through the first node", func() bool { return c.distinct() == 10 })
	if n := second.open(); n != 0 {
		t.Fatalf("%d connections to the second node before the first failed", n)
	}

	first.l.Close() // the node is gone: nothing answers there any more
	first.cut()
	if err := pub.Publish(ctxT(t), topic, msgs(10, "after")...); err != nil {
		t.Fatalf("publish after the first node went away: %v", err)
	}
	c.waitFor(t, testTimeout, "messages through the second node", func() bool { return c.distinct() == 20 })
	if n := second.open(); n < 2*2 { // publisher and subscriber, each proxied both ways
		t.Fatalf("%d proxied connections on the second node, want publisher's and subscriber's", n/2)
	}
}
