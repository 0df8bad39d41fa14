package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/busline/bus"
)

// ledger records handled messages keyed "key/seq" and checks per-key
// order: the first handling of seq n of a key comes after the first
// handling of seq n-1.
type ledger struct {
	mu      sync.Mutex
	seen    map[string]int // "key/seq" → times handled
	next    map[string]int // key → next seq expected first-time
	errs    []string
	handled int
}

func newLedger() *ledger { return &ledger{seen: map[string]int{}, next: map[string]int{}} }

func (l *ledger) record(m *bus.Message) {
	seq, _ := strconv.Atoi(m.Metadata["seq"])
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handled++
	id := m.Key + "/" + strconv.Itoa(seq)
	l.seen[id]++
	if l.seen[id] > 1 {
		return // redelivery
	}
	if want := l.next[m.Key]; seq != want {
		l.errs = append(l.errs, fmt.Sprintf("key %s: first saw seq %d while expecting %d", m.Key, seq, want))
	}
	l.next[m.Key] = seq + 1
}

func (l *ledger) unique() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

func (l *ledger) check(t *testing.T, keys, perKey int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Error(e)
	}
	for k := range keys {
		for s := range perKey {
			if l.seen[fmt.Sprintf("key-%d/%d", k, s)] == 0 {
				t.Errorf("key-%d seq %d never handled", k, s)
			}
		}
	}
	t.Logf("%d unique messages, %d handler calls (%d redeliveries)", len(l.seen), l.handled, l.handled-len(l.seen))
}

// keyedBatch returns messages seq [from, to) of every key.
func keyedBatch(keys, from, to int) []*bus.Message {
	var out []*bus.Message
	for s := from; s < to; s++ {
		for k := range keys {
			out = append(out, &bus.Message{Key: fmt.Sprintf("key-%d", k), Body: []byte("x"),
				Metadata: map[string]string{"seq": strconv.Itoa(s)}})
		}
	}
	return out
}

func publishCtx(t *testing.T, p *Publisher, topic string, msgs []*bus.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Publish(ctx, topic, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// Two members share 6 partitions; a third joins and one leaves while
// messages flow. Every message is handled, each key in order.
func TestGroupMembersJoinAndLeaveMidStream(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 6)
	pub := newTestPublisher(t, cfg)
	l := newLedger()
	h := func(_ context.Context, m *bus.Message) error {
		time.Sleep(time.Millisecond) // simulated work, so that the stream is still flowing during rebalances
		l.record(m)
		return nil
	}
	opts := []bus.SubscribeOption{bus.Group("g"), bus.Concurrency(4)}
	const keys, perStep = 20, 25
	a := subscribe(t, newTestSubscriber(t, cfg), topic, h, opts...)
	subscribe(t, newTestSubscriber(t, cfg), topic, h, opts...)

	publishCtx(t, pub, topic, keyedBatch(keys, 0, perStep))
	waitFor(t, 30*time.Second, "first messages handled", func() bool { return l.unique() >= keys*perStep/4 })
	subscribe(t, newTestSubscriber(t, cfg), topic, h, opts...) // a third member joins
	publishCtx(t, pub, topic, keyedBatch(keys, perStep, 2*perStep))
	waitFor(t, 30*time.Second, "more messages handled", func() bool { return l.unique() >= keys*perStep*5/4 })
	a.stop(t) // a member leaves
	publishCtx(t, pub, topic, keyedBatch(keys, 2*perStep, 3*perStep))
	waitFor(t, 60*time.Second, "every message handled", func() bool { return l.unique() == keys*3*perStep })
	l.check(t, keys, 3*perStep)
}

// One of the three brokers is removed while messages flow: publishing and
// group consumption carry on.
func TestBrokerRemovedMidStream(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := testConfig(fake.ListenAddrs())
	k := &killer{}
	cfg.dial = k.dial // to cut the connections to the removed broker, as its death would
	topic := newTopic(t, cfg, 3)
	pub := newTestPublisher(t, cfg)
	l := newLedger()
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
		l.record(m)
		return nil
	}, bus.Group("g"), bus.Concurrency(3))
	const keys, per = 10, 20
	publishCtx(t, pub, topic, keyedBatch(keys, 0, per))
	waitFor(t, 30*time.Second, "messages before the removal", func() bool { return l.unique() >= keys*per/2 })

	victim := fake.CoordinatorFor("g")
	before := fake.ListenAddrs()
	if err := fake.RemoveNode(victim); err != nil {
		t.Fatal(err)
	}
	addr := ""
	for _, a := range before {
		if !slices.Contains(fake.ListenAddrs(), a) {
			addr = a
		}
	}
	t.Logf("cut %d connections to the removed broker", k.cut(addr))
	t.Logf("removed broker %d (the group coordinator)", victim)
	// The first publish after the removal meets the connections cut under
	// it: Publish sends what failed on them again instead of failing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, topic, keyedBatch(keys, per, 2*per)...); err != nil {
		t.Fatalf("publish after the broker removal: %v", err)
	}
	waitFor(t, 60*time.Second, "every message handled", func() bool { return l.unique() == keys*2*per })
	l.check(t, keys, 2*per)
}

// killer cuts a process's connections, as a crash would.
type killer struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

func (k *killer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dead {
		return nil, errors.New("killed")
	}
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	if err == nil {
		k.conns = append(k.conns, c)
	}
	return c, err
}

// cut closes the connections to addr (later dials to it fail on their
// own once the broker is gone) and returns how many it closed.
func (k *killer) cut(addr string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, c := range k.conns {
		if c.RemoteAddr().String() == addr {
			_ = c.Close()
			n++
		}
	}
	return n
}

func (k *killer) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dead = true
	for _, c := range k.conns {
		_ = c.Close()
	}
}

// A member that dies with messages in its handlers (nothing committed)
// leaves them to the member that takes over its partitions.
func TestKilledMemberMessagesHandledByAnother(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 3)
	pub := newTestPublisher(t, cfg)

	k := &killer{}
	vcfg := cfg
	vcfg.dial = k.dial
	hang := make(chan struct{})
	defer close(hang)
	var mu sync.Mutex
	victimSaw := map[string]bool{}
	victim := newTestSubscriber(t, vcfg)
	subscribe(t, victim, topic, func(ctx context.Context, m *bus.Message) error {
		mu.Lock()
		victimSaw[m.ID] = true
		mu.Unlock()
		select { // hangs until the test ends: never finishes, never commits
		case <-hang:
		case <-ctx.Done():
		}
		return errors.New("gave up")
	}, bus.Group("g"), bus.Concurrency(8))

	var sent []*bus.Message
	for i := range 30 {
		sent = append(sent, &bus.Message{Key: fmt.Sprint("k", i), Body: []byte("x")})
	}
	publishCtx(t, pub, topic, sent)
	waitFor(t, 30*time.Second, "the victim to start handling", func() bool { mu.Lock(); defer mu.Unlock(); return len(victimSaw) >= 3 })
	k.kill()

	var smu sync.Mutex
	survivorGot := map[string]bool{}
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
		smu.Lock()
		survivorGot[m.ID] = true
		smu.Unlock()
		return nil
	}, bus.Group("g"), bus.Concurrency(8))
	waitFor(t, 60*time.Second, "the survivor to handle every message", func() bool {
		smu.Lock()
		defer smu.Unlock()
		return len(survivorGot) == len(sent)
	})
	mu.Lock()
	defer mu.Unlock()
	for id := range victimSaw {
		if !survivorGot[id] {
			t.Errorf("message %s, in the victim's handler when it died, was not handled again", id)
		}
	}
	t.Logf("victim had %d messages in its handlers; all handled again by the survivor", len(victimSaw))
}
