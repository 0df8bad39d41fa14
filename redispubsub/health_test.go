package redispubsub_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/busline/bus"
)

// downProxy carries TCP connections to Redis until it is down: then it
// cuts what it carries and refuses (closes) new connections. With
// loseReply set, the next bytes Redis sends on any connection are dropped
// and that connection is cut: a command Redis carried out whose reply
// never arrives.
type downProxy struct {
	l         net.Listener
	down      atomic.Bool
	loseReply atomic.Bool
	mu        sync.Mutex
	conns     []net.Conn
}

func newDownProxy(t *testing.T, target string) *downProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &downProxy{l: l}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if p.down.Load() {
				c.Close()
				continue
			}
			b, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(b, c); b.Close() }()
			go func() { defer wg.Done(); p.reply(c, b); c.Close() }()
		}
	}()
	t.Cleanup(func() { l.Close(); p.setDown(true); wg.Wait() })
	return p
}

// reply copies what Redis sends on b to the client c, until either ends or
// a reply is to be lost.
func (p *downProxy) reply(c, b net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := b.Read(buf)
		if n > 0 && p.loseReply.CompareAndSwap(true, false) {
			b.Close()
			return
		}
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// setDown cuts every carried connection when going down.
func (p *downProxy) setDown(down bool) {
	p.down.Store(down)
	if !down {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestHealthFollowsTheBroker: a subscription whose Redis goes away
// reports reconnecting (unhealthy, with the error) until Redis is back,
// then live; after Close, closed.
func TestHealthFollowsTheBroker(t *testing.T) {
	px := newDownProxy(t, redisAddr)
	cfg := standaloneConfig()
	cfg.Addr = px.l.Addr().String()
	cfg.DialTimeout = time.Second
	sub := newSubscriber(t, cfg)
	start(t, sub, uniqueTopic(t), newInbox().handler)
	if h := sub.Health(); h.State != bus.HealthLive || !h.Healthy(0) {
		t.Fatalf("health while subscribed: %+v", h)
	}
	pub := newPublisher(t, cfg)
	if err := pub.Publish(context.Background(), uniqueTopic(t), &bus.Message{}); err != nil || pub.Health().State != bus.HealthLive {
		t.Fatalf("publish %v, publisher health %+v", err, pub.Health())
	}
	px.setDown(true)
	// A publisher learns of the loss from a publish that cannot reach Redis.
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pub.Publish(pctx, uniqueTopic(t), &bus.Message{}); !errors.Is(err, bus.ErrUnreachable) {
		t.Fatalf("publish with Redis away = %v, want ErrUnreachable", err)
	}
	if h := pub.Health(); h.State != bus.HealthReconnecting || h.Err == nil || h.Reconnects != 1 {
		t.Fatalf("publisher health with Redis away: %+v", h)
	}
	waitUntil(t, "the subscription reconnecting", nil, func() bool {
		h := sub.Health()
		return h.State == bus.HealthReconnecting && h.Err != nil && !h.Healthy(0) && h.Healthy(time.Hour)
	})
	px.setDown(false)
	waitUntil(t, "the subscription live again", nil, func() bool { return sub.Health().State == bus.HealthLive })
	waitUntil(t, "a publish reaching Redis again", nil, func() bool {
		return pub.Publish(context.Background(), uniqueTopic(t), &bus.Message{}) == nil
	})
	if h := pub.Health(); h.State != bus.HealthLive {
		t.Fatalf("publisher health once Redis is back: %+v", h)
	}
	_ = sub.Close()
	if h := sub.Health(); h.State != bus.HealthClosed {
		t.Fatalf("health after Close: %+v", h)
	}
}

// TestHealthAfterClientKill: Redis itself drops the subscription's
// connection (CLIENT KILL), again on every reconnect for a while, as a
// server going away would: the subscription reports reconnecting,
// unhealthy past a threshold of zero and with the error, and live again
// once the kills stop, and it receives what is published after.
func TestHealthAfterClientKill(t *testing.T) {
	admin := rawClient(t)
	ctx := context.Background()
	user := "busline-health-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.Do(context.Background(), "ACL", "DELUSER", user).Err()
		_ = admin.Do(context.Background(), "CLIENT", "KILL", "USER", user).Err()
	})
	cfg := standaloneConfig()
	cfg.Username, cfg.Password = user, "pw"
	cfg.MaxReconnectBackoff = 200 * time.Millisecond
	sub := newSubscriber(t, cfg)
	topic := uniqueTopic(t)
	in := newInbox()
	start(t, sub, topic, in.handler)
	if h := sub.Health(); h.State != bus.HealthLive || !h.Healthy(0) {
		t.Fatalf("health while subscribed: %+v", h)
	}

	// Kill the user's connections until the subscription is seen
	// reconnecting (waitUntil bounds it); a reconnect may win a moment
	// between two kills, so they go on until it is observed.
	var seen bus.Health
	stop := make(chan struct{})
	killed := make(chan int)
	go func() {
		n := 0
		defer func() { killed <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if k, err := admin.Do(ctx, "CLIENT", "KILL", "USER", user).Int(); err == nil {
				n += k
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	waitUntil(t, "the subscription reconnecting after CLIENT KILL", nil, func() bool {
		seen = sub.Health()
		return seen.State == bus.HealthReconnecting && seen.Err != nil && !seen.Healthy(0) && seen.Healthy(time.Hour)
	})
	close(stop)
	if n := <-killed; n == 0 {
		t.Fatal("CLIENT KILL USER killed no connection")
	}
	if !errors.Is(seen.Err, bus.ErrUnreachable) {
		t.Errorf("error while reconnecting = %v, want one wrapping ErrUnreachable", seen.Err)
	}
	waitUntil(t, "the subscription live again", nil, func() bool { return sub.Health().State == bus.HealthLive })
	if h := sub.Health(); h.Reconnects < 1 || !h.Healthy(0) {
		t.Fatalf("health once the kills stopped: %+v", h)
	}
	pub := newPublisher(t, standaloneConfig())
	waitUntil(t, "a message published after the kills", in.poke, func() bool {
		if in.len() > 0 {
			return true
		}
		_ = pub.Publish(ctx, topic, &bus.Message{})
		return false
	})
}
