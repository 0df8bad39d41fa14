package amqp_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

// stallProxy forwards loopback TCP connections to the broker and can stop
// reading what the client sends, as a broker under a resource alarm does
// with a blocked publishing connection.
type stallProxy struct {
	l         net.Listener
	stalled   atomic.Bool
	blackhole atomic.Bool  // new connections are held open and never answered
	held      atomic.Int32 // connections held by blackhole
	resume    chan struct{}
	mu        sync.Mutex
	conns     []net.Conn
	wg        sync.WaitGroup
}

func newStallProxy(t testing.TB, target string) *stallProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{l: l, resume: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if p.blackhole.Load() {
				p.mu.Lock()
				p.conns = append(p.conns, c)
				p.mu.Unlock()
				p.held.Add(1)
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
			p.wg.Add(2)
			go p.pipe(b, c, true)
			go p.pipe(c, b, false)
		}
	}()
	t.Cleanup(func() {
		close(p.resume)
		l.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// cut closes every connection the proxy carries.
func (p *stallProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// proxiedPublisher starts a stall proxy to the broker and a publisher
// through it with the URL parameters query, warmed by one publish to the
// returned topic. The caller shuts the publisher down.
func proxiedPublisher(t *testing.T, query string) (*stallProxy, amqp.Config, *amqp.Publisher, string) {
	t.Helper()
	px := newStallProxy(t, "127.0.0.1:5672")
	cfg := mustConfig(t, query)
	cfg.URL = "amqp://guest:guest@" + px.l.Addr().String() + "/"
	topic := uniqueTopic(t)
	pub, err := amqp.NewPublisher(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctxT(t), topic, &bus.Message{Body: []byte("warm")}); err != nil {
		t.Fatal(err)
	}
	return px, cfg, pub, topic
}

// proxiedConfig starts a stall proxy to the broker and returns a config
// that dials through it, with quick redials (extra URL parameters first).
func proxiedConfig(t *testing.T, extra string) (*stallProxy, amqp.Config) {
	t.Helper()
	px := newStallProxy(t, "127.0.0.1:5672")
	cfg := mustConfig(t, extra+"dial_timeout=1s&reconnect_min=10ms&reconnect_max=100ms")
	cfg.URL = "amqp://guest:guest@" + px.l.Addr().String() + "/"
	return px, cfg
}

// proxiedSubscriber is a subscriber through a proxiedConfig, closed when
// the test ends.
func proxiedSubscriber(t *testing.T, extra string) (*stallProxy, *amqp.Subscriber) {
	t.Helper()
	px, cfg := proxiedConfig(t, extra)
	sub, err := amqp.NewSubscriber(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return px, sub
}

// proxiedBroadcast starts a stall proxy to the broker and a broadcast
// subscription through it (exchange topology, quick redials; extra URL
// parameters first), running h on a new topic.
func proxiedBroadcast(t *testing.T, extra string, h bus.Handler) (*stallProxy, string, *subscription) {
	t.Helper()
	px, sub := proxiedSubscriber(t, extra)
	topic := uniqueTopic(t)
	return px, topic, subscribe(t, sub, topic, h)
}

func (p *stallProxy) pipe(dst, src net.Conn, fromClient bool) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		if fromClient && p.stalled.Load() {
			<-p.resume
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestShutdownBoundedWhenBrokerStopsReading: a broker that stops reading
// the publishing connection (a memory or disk alarm) must not make
// Shutdown hang past its deadline.
func TestShutdownBoundedWhenBrokerStopsReading(t *testing.T) {
	px, _, pub, topic := proxiedPublisher(t, "topology=workqueue&heartbeat=120s")
	px.stalled.Store(true)
	ms := make([]*bus.Message, 400)
	for i := range ms {
		ms[i] = &bus.Message{Body: make([]byte, 64<<10)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, topic, ms...); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish to a stalled broker: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		done <- pub.Shutdown(ctx)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown with a 1s deadline still running after 15s")
	}
	if err := pub.Publish(ctxT(t), topic, &bus.Message{Body: []byte("late")}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("publish after Shutdown: %v", err)
	}
}

// TestShutdownBoundedWhileRedialing: a broker that accepts TCP and never
// answers the handshake must not hold up Shutdown or As for the dial
// timeout; Shutdown cuts the dial in progress.
func TestShutdownBoundedWhileRedialing(t *testing.T) {
	px, cfg, pub, topic := proxiedPublisher(t, "topology=workqueue&dial_timeout=60s&reconnect_min=10ms")
	sub, err := amqp.NewSubscriber(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	subscribe(t, sub, topic, newCollector().handle, bus.Group(topic))

	px.blackhole.Store(true)
	px.cut()
	waitUntil(t, 10*time.Second, "publisher and subscriber redialing", func() bool { return px.held.Load() >= 2 })

	bounded := func(what string, limit time.Duration, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(limit):
			t.Fatalf("%s still running after %v while a dial hangs", what, limit)
		}
	}
	var c *amqp091.Connection
	bounded("Publisher.As", 2*time.Second, func() { pub.As(&c) })
	bounded("Subscriber.As", 2*time.Second, func() { sub.As(&c) })
	for name, s := range map[string]bus.Shutdowner{"publisher": pub, "subscriber": sub} {
		bounded(name+" Shutdown(1s)", 5*time.Second, func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = s.Shutdown(ctx)
		})
	}
	if err := pub.Publish(ctxT(t), topic, &bus.Message{Body: []byte("late")}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("publish after Shutdown: %v", err)
	}
}

// TestBroadcastKeepsMessagesAcrossReconnect: what is published while a
// broadcast subscriber reconnects waits in its queue and reaches it once
// it is back; the queue goes away when the subscription ends.
func TestBroadcastKeepsMessagesAcrossReconnect(t *testing.T) {
	c := newCollector()
	px, topic, running := proxiedBroadcast(t, "", c.handle)
	pub := newPublisher(t, mustConfig(t, "")) // straight to the broker
	if err := pub.Publish(ctxT(t), topic, msgs(5, "before")...); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, testTimeout, "messages before the cut", func() bool { return c.distinct() == 5 })

	px.blackhole.Store(true)
	px.cut()
	waitUntil(t, 10*time.Second, "the subscriber redialing", func() bool { return px.held.Load() >= 1 })
	if err := pub.Publish(ctxT(t), topic, msgs(5, "during")...); err != nil {
		t.Fatalf("publish while the broadcast subscriber reconnects: %v", err)
	}
	px.blackhole.Store(false)
	c.waitFor(t, testTimeout, "messages published while it was away", func() bool { return c.distinct() == 10 })

	if err := running.stop(t); err != nil {
		t.Fatal(err)
	}
	if out := rabbitmqctlOut(t, "list_queues", "name"); strings.Contains(out, topic+".broadcast.") {
		t.Fatalf("the broadcast queue outlived its subscription:\n%s", out)
	}
}

// TestBroadcastQueueExpiresWithoutItsSubscriber: the queue of a broadcast
// subscriber that never comes back (its process died) is deleted by the
// broker after broadcast_expires.
func TestBroadcastQueueExpiresWithoutItsSubscriber(t *testing.T) {
	px, topic, _ := proxiedBroadcast(t, "broadcast_expires=1s&", newCollector().handle)
	queues := func() string { return rabbitmqctlOut(t, "list_queues", "name") }
	if !strings.Contains(queues(), topic+".broadcast.") {
		t.Fatal("no broadcast queue while subscribed")
	}
	px.blackhole.Store(true) // it never gets back
	px.cut()
	waitUntil(t, 20*time.Second, "the broker to expire the broadcast queue", func() bool {
		return !strings.Contains(queues(), topic+".broadcast.")
	})
}
