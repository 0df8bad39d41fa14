package kafka

import (
	"context"
	"errors"
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

// A publisher reports reconnecting, with the error, from a publish that
// could not reach the cluster (here kfake drops every produce request's
// connection) until one that does.
func TestPublisherHealth(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := testConfig(fake.ListenAddrs())
	cfg.WriteTimeout = 2 * time.Second
	topic := newTopic(t, cfg, 1)
	pub := newTestPublisher(t, cfg)
	publishCtx(t, pub, topic, []*bus.Message{{Body: []byte("warm")}})
	if h := pub.Health(); h.State != bus.HealthLive {
		t.Fatalf("health after a publish: %+v", h)
	}
	var refusing atomic.Bool
	refusing.Store(true)
	fake.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if refusing.Load() {
			return nil, errors.New("test: connection dropped"), true
		}
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := pub.Publish(ctx, topic, &bus.Message{Body: []byte("lost")})
	if h := pub.Health(); !errors.Is(err, bus.ErrUnreachable) || h.State != bus.HealthReconnecting || h.Err == nil {
		t.Fatalf("publish with the cluster refusing = %v, health %+v; want ErrUnreachable and reconnecting", err, h)
	}
	refusing.Store(false)
	publishCtx(t, pub, topic, []*bus.Message{{Body: []byte("back")}})
	if h := pub.Health(); h.State != bus.HealthLive || h.Reconnects != 1 {
		t.Fatalf("health once the cluster answers: %+v", h)
	}
}
