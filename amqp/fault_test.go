package amqp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

// proxy forwards loopback TCP connections to the broker and can cut them
// all at once.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	cuts  atomic.Int32
	wg    sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept(target)
	t.Cleanup(func() { l.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) accept(target string) {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		b, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[b] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, b)
		go p.pipe(b, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// open counts the proxy's open sockets, two per proxied connection.
func (p *proxy) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// cut closes every open connection, as a network failure would.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.cuts.Add(1)
}

// TestConnectionCutsLoseNothing publishes and consumes 10,000 messages
// through a proxy that cuts every connection several times on the way:
// every confirmed message is consumed, and a message handled twice is
// always flagged as a redelivery.
func TestConnectionCutsLoseNothing(t *testing.T) {
	for _, q := range []string{"", "topology=workqueue"} {
		t.Run("q="+q, func(t *testing.T) { testCuts(t, q) })
	}
}

func testCuts(t *testing.T, query string) {
	const (
		total      = 10000
		publishers = 4
		batch      = 100
		cuts       = 6
	)
	px := newProxy(t, "127.0.0.1:5672")
	base := mustConfig(t, query)
	cfg, err := amqp.ParseURL("amqp://guest:guest@" + px.addr() + "/?reconnect_min=20ms&reconnect_max=500ms&dial_timeout=5s" + amp(query))
	if err != nil {
		t.Fatal(err)
	}
	topic := uniqueTopic(t)
	group := "g"
	if base.Topology == amqp.TopologyWorkQueue {
		group = topic
	}
	sub := newSubscriber(t, cfg)
	var mu sync.Mutex
	seen := map[string]int{}
	var unflagged []string
	var consumed atomic.Int64
	progress := make(chan struct{}, 1)
	subscribe(t, sub, topic, func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		if seen[m.ID] > 0 && !m.Delivery.Redelivered {
			unflagged = append(unflagged, m.ID)
			var d amqp091.Delivery
			m.As(&d)
			if len(unflagged) < 4 {
				t.Logf("duplicate %s unflagged: broker's redelivered %v, delivery tag %d, headers %v",
					m.ID, d.Redelivered, d.DeliveryTag, d.Headers)
			}
		}
		if seen[m.ID] == 0 {
			consumed.Add(1)
		}
		seen[m.ID]++
		mu.Unlock()
		select {
		case progress <- struct{}{}:
		default:
		}
		return nil
	}, bus.Group(group), bus.Concurrency(16))

	pub := newPublisher(t, cfg)
	var confirmedMu sync.Mutex
	var confirmed []string
	var published atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < total/publishers; i += batch {
				ms := make([]*bus.Message, batch)
				for j := range ms {
					ms[j] = &bus.Message{ID: fmt.Sprintf("p%d-%d", p, i+j), Body: []byte(strconv.Itoa(i + j))}
				}
				// A failed Publish is retried with the same IDs, as an
				// at-least-once producer would; it is bounded by ctx.
				var err error
				for attempt := 0; attempt < 20; attempt++ {
					if err = pub.Publish(ctxT(t), topic, ms...); err == nil {
						break
					}
					t.Logf("publish failed, retrying with the same IDs: %v", err)
				}
				if err != nil {
					errs <- err
					return
				}
				confirmedMu.Lock()
				for _, m := range ms {
					confirmed = append(confirmed, m.ID)
				}
				confirmedMu.Unlock()
				published.Add(batch)
			}
		}()
	}

	// Cut while both sides are busy: at evenly spaced points of progress.
	cutDone := make(chan struct{})
	go func() {
		defer close(cutDone)
		deadline := time.Now().Add(2 * testTimeout)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for k := 1; k <= cuts && time.Now().Before(deadline); {
			<-tick.C
			if published.Load()+consumed.Load() >= int64(k*2*total/(cuts+1)) {
				px.cut()
				k++
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish failed for good: %v", err)
	}
	deadline := time.NewTimer(2 * testTimeout)
	defer deadline.Stop()
	for consumed.Load() < total {
		select {
		case <-progress:
		case <-time.After(100 * time.Millisecond):
		case <-deadline.C:
			t.Fatalf("consumed %d of %d confirmed messages", consumed.Load(), total)
		}
	}
	<-cutDone
	mu.Lock()
	defer mu.Unlock()
	for _, id := range confirmed {
		if seen[id] == 0 {
			t.Fatalf("confirmed message %s was never consumed", id)
		}
	}
	if len(unflagged) > 0 {
		t.Fatalf("%d duplicates without the redelivered flag, e.g. %s", len(unflagged), unflagged[0])
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("%d cuts, %d messages, %d flagged redeliveries", px.cuts.Load(), len(seen), dups)
	if px.cuts.Load() < cuts {
		t.Fatalf("only %d cuts happened", px.cuts.Load())
	}
}

func amp(q string) string {
	if q == "" {
		return ""
	}
	return "&" + q
}
