package kafka

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/busline/bus"
)

// TestHealthFollowsTheGroup: a live group member whose coordinator starts
// a rebalance and then refuses it back into the group reports
// reconnecting, with the error, until the coordinator lets it join again;
// then live; closed after Close. (kfake only: it needs the broker to
// refuse requests.)
func TestHealthFollowsTheGroup(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := testConfig(fake.ListenAddrs())
	topic := newTopic(t, cfg, 2)
	sub := newTestSubscriber(t, cfg)
	subscribe(t, sub, topic, func(context.Context, *bus.Message) error { return nil }, bus.Group("health"))
	if h := sub.Health(); h.State != bus.HealthLive {
		t.Fatalf("health once joined: %+v", h)
	}

	var refusing atomic.Bool
	refusing.Store(true)
	fake.ControlKey(kmsg.Heartbeat.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if !refusing.Load() {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		return resp, nil, true
	})
	fake.ControlKey(kmsg.JoinGroup.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if !refusing.Load() {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil, true
	})
	waitFor(t, 30*time.Second, "the member reconnecting", func() bool {
		h := sub.Health()
		return h.State == bus.HealthReconnecting && h.Err != nil && !h.Healthy(0)
	})
	refusing.Store(false)
	waitFor(t, 30*time.Second, "the member live again", func() bool { return sub.Health().State == bus.HealthLive })
	_ = sub.Close()
	if h := sub.Health(); h.State != bus.HealthClosed {
		t.Fatalf("health after Close: %+v", h)
	}
}

// Lag tells how many messages of a partition are past the last one the
// subscription finished: all of them while the first is held, none once
// everything is handled.
func TestLag(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	cfg.MaxUncommitted = 10
	topic := newTopic(t, cfg, 1)
	msgs := make([]*bus.Message, 50)
	for i := range msgs {
		msgs[i] = &bus.Message{Body: []byte("x")}
	}
	publishCtx(t, newTestPublisher(t, cfg), topic, msgs)
	sub := newTestSubscriber(t, cfg)
	release := make(chan struct{})
	var handled atomic.Int32
	subscribe(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		handled.Add(1)
		return nil
	}, bus.Group("lag"))
	lagOf := func() int64 {
		for _, l := range sub.Lag() {
			if l.Topic == topic && l.Group == "lag" && l.Partition == 0 {
				return l.Lag
			}
		}
		return -1
	}
	waitFor(t, 30*time.Second, "a lag of every message while the first is held", func() bool { return lagOf() == 50 })
	close(release)
	waitFor(t, 30*time.Second, "every message handled", func() bool { return handled.Load() == 50 })
	waitFor(t, 30*time.Second, "no lag", func() bool { return lagOf() == 0 })
}
