package bustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/busline/bus"
)

// Run runs every check that applies to the adapter behind h. Each check
// uses its own topic, so adapters' tests may run Run in parallel with
// other tests.
func Run(t *testing.T, h Harness) {
	if h.NewPublisher == nil || h.NewSubscriber == nil {
		t.Fatal("bustest: Harness needs NewPublisher and NewSubscriber")
	}
	if h.Timeout == 0 {
		h.Timeout = 60 * time.Second
	}
	if h.LoadMessages == 0 {
		h.LoadMessages = 10000
	}
	probe := h.NewSubscriber(t)
	cr, ok := probe.(bus.CapabilityReporter)
	if !ok {
		t.Fatalf("bustest: %T does not implement bus.CapabilityReporter", probe)
	}
	s := &suite{h: h, caps: cr.Capabilities()}
	_ = probe.Close()
	t.Logf("capabilities: %+v", s.caps)

	checks := []struct {
		name string
		run  func(*testing.T)
		when bool
	}{
		{"EnvelopeRoundTrip", s.envelope, true},
		{"GeneratedID", s.generatedID, true},
		{"Load", s.load, true},
		{"Concurrency", s.concurrency, true},
		{"BroadcastReachesEverySubscriber", s.broadcast, s.caps.Broadcast},
		{"TwoGroupsEachGetEverything", s.twoGroups, s.caps.Groups && !s.caps.SingleGroup},
		{"GroupMembersShareWork", s.shareWork, s.caps.Groups},
		{"GroupKeepsMessagesWhileStopped", s.durableGroup, s.caps.DurableGroups},
		{"UnsupportedGroupingIsAnError", s.unsupported, !s.caps.Groups || !s.caps.Broadcast},
		{"HandlerErrorRetriesThenDeadLetters", s.retryThenDeadLetter, true},
		{"PermanentErrorSkipsRetries", s.permanent, true},
		{"RetryForeverWithoutBackoff", s.retryForever, true},
		{"PanicDoesNotKillSubscription", s.panics, true},
		{"OrderByKey", s.orderByKey, s.caps.OrderedByKey},
		{"CloseDrainsRunningHandlers", s.closeDrains, true},
		{"AfterCloseErrClosed", s.afterClose, true},
		{"CancelEndsSubscribe", s.cancelEnds, true},
		{"BadInput", s.badInput, true},
		{"CancelledBeforeReadyIsAnError", s.cancelledBeforeReady, true},
		{"ClosedAndInvalidRules", s.closedRules, true},
		{"LoggerOptionWins", s.loggerWins, true},
		{"ReceiverCountMatchesCapabilities", s.receiverCount, true},
		{"HotKeyDoesNotStarveOthers", s.hotKey, s.caps.OrderedByKey},
		{"ShutdownKeepsDeadline", s.shutdownDeadline, true},
		{"MiddlewareOrderAndAttempts", s.middleware, true},
		{"TypedRoundTrip", s.typed, true},
	}
	for _, c := range checks {
		if !c.when {
			continue
		}
		t.Run(c.name, c.run)
	}
}

func (s *suite) envelope(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	body := make([]byte, 256)
	for i := range body {
		body[i] = byte(i)
	}
	want := []*bus.Message{
		{
			ID: "bustest-envelope-1", Type: "order.created", Source: "/bustest/orders", Subject: "order №42 ✓",
			Time: time.Date(2026, 11, 28, 12, 30, 45, 123456000, time.UTC), ContentType: "application/octet-stream",
			Key: "customer-7", Body: body,
			Metadata: map[string]string{"trace-id": "abc123", "Weird Key/ü": "välue with \"quotes\", commas; and\ttabs", "empty": "", "emoji": "🚌"},
		},
		{ID: "bustest-envelope-2", Type: "order.json", Source: "s", ContentType: "application/json", Body: []byte(`{"total":12.5,"items":["a","b"]}`)},
		{ID: "bustest-envelope-3", Type: "order.empty", Source: "s"},
	}
	c := newCollector()
	s.start(t, s.sub(t), topic, c.handler, s.shared(topic)...)
	if err := s.pub(t).Publish(ctx, topic, want...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	c.waitUnique(t, len(want), s.h.Timeout)
	got := map[string]*bus.Message{}
	for _, m := range c.snapshot() {
		got[m.ID] = m
	}
	for _, w := range want {
		g := got[w.ID]
		if g == nil {
			t.Fatalf("message %s not received; got %v", w.ID, got)
		}
		if g.Type != w.Type || g.Source != w.Source || g.Subject != w.Subject || g.ContentType != w.ContentType || g.Key != w.Key {
			t.Errorf("attributes differ:\nwant %+v\ngot  %+v", w, g)
		}
		if d := g.Time.Sub(w.Time); d > time.Millisecond || d < -time.Millisecond {
			t.Errorf("time: want %v, got %v", w.Time, g.Time)
		}
		if !bytes.Equal(g.Body, w.Body) {
			t.Errorf("body: want %q, got %q", w.Body, g.Body)
		}
		for k, v := range w.Metadata {
			if gv, ok := g.Metadata[k]; !ok || gv != v {
				t.Errorf("metadata %q: want %q, got %q (present %v)", k, v, gv, ok)
			}
		}
		for k := range g.Metadata {
			if _, ok := w.Metadata[k]; !ok {
				t.Errorf("unexpected metadata %q=%q", k, g.Metadata[k])
			}
		}
		if g.Delivery.Topic != topic || g.Delivery.Attempt != 1 {
			t.Errorf("delivery: want topic %q attempt 1, got %+v", topic, g.Delivery)
		}
	}
}

func (s *suite) generatedID(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	c := newCollector()
	s.start(t, s.sub(t), topic, c.handler, s.shared(topic)...)
	m := &bus.Message{Body: []byte("no id")}
	if err := s.pub(t).Publish(ctx, topic, m); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if m.ID == "" || m.Time.IsZero() || m.Source != bus.DefaultSource || m.Type != bus.DefaultType {
		t.Fatalf("Publish did not fill the defaults: %+v", m)
	}
	c.waitUnique(t, 1, s.h.Timeout)
	if got := c.snapshot()[0]; got.ID != m.ID {
		t.Fatalf("received ID %q, published %q", got.ID, m.ID)
	}
}

func (s *suite) load(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	n := s.h.LoadMessages
	c := newCollector()
	s.start(t, s.sub(t), topic, c.handler, append(s.shared(topic), bus.Concurrency(16))...)
	const publishers = 8
	var wg sync.WaitGroup
	ids := make([][]string, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub := s.pub(t)
			ids[p] = publishN(t, ctx, pub, topic, n/publishers, func(i int) *bus.Message {
				return &bus.Message{Key: fmt.Sprintf("k%d", i%64), Body: []byte(fmt.Sprintf("p%d-%d", p, i))}
			})
		}()
	}
	wg.Wait()
	total := publishers * (n / publishers)
	c.waitUnique(t, total, s.h.Timeout)
	for _, list := range ids {
		for _, id := range list {
			if c.byID[id] == 0 {
				t.Fatalf("message %s was published but never received", id)
			}
		}
	}
	c.noDuplicates(t)
}

func (s *suite) concurrency(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	const limit = 4
	var inflight, peak atomic.Int32
	reached := make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, m *bus.Message) error {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if n > limit {
			t.Errorf("%d handlers at once, limit %d", n, limit)
		}
		if n == limit {
			once.Do(func() { close(reached) })
		}
		select { // hold the slot until the limit is reached
		case <-reached:
		case <-time.After(s.h.Timeout):
		}
		return nil
	}
	s.start(t, s.sub(t), topic, h, append(s.shared(topic), bus.Concurrency(limit))...)
	publishN(t, ctx, s.pub(t), topic, 4*limit, func(i int) *bus.Message {
		return &bus.Message{Key: fmt.Sprintf("key-%d", i), Body: []byte("c")}
	})
	select {
	case <-reached:
	case <-time.After(s.h.Timeout):
		t.Fatalf("never %d handlers at once (peak %d)", limit, peak.Load())
	}
}

func (s *suite) broadcast(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	sub1, sub2 := s.sub(t), s.sub(t)
	cs := []*collector{newCollector(), newCollector(), newCollector()}
	s.start(t, sub1, topic, cs[0].handler)
	s.start(t, sub1, topic, cs[1].handler)
	s.start(t, sub2, topic, cs[2].handler)
	publishN(t, ctx, s.pub(t), topic, 50, plain)
	for _, c := range cs {
		c.waitUnique(t, 50, s.h.Timeout)
	}
}

func (s *suite) twoGroups(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	a, b := newCollector(), newCollector()
	s.start(t, s.sub(t), topic, a.handler, bus.Group("billing"))
	s.start(t, s.sub(t), topic, b.handler, bus.Group("shipping"))
	publishN(t, ctx, s.pub(t), topic, 100, plain)
	a.waitUnique(t, 100, s.h.Timeout)
	b.waitUnique(t, 100, s.h.Timeout)
	a.noDuplicates(t)
	b.noDuplicates(t)
}

func (s *suite) shareWork(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	all := newCollector()
	var counts [2]atomic.Int32
	both := make(chan struct{})
	var once sync.Once
	member := func(i int) bus.Handler {
		return func(ctx context.Context, m *bus.Message) error {
			all.add(m)
			counts[i].Add(1)
			if counts[0].Load() > 0 && counts[1].Load() > 0 {
				once.Do(func() { close(both) })
			}
			// Hold each member's first message until the other member got
			// one too: the group must hand work to both.
			select {
			case <-both:
			case <-time.After(s.h.Timeout / 2):
			}
			return nil
		}
	}
	s.start(t, s.sub(t), topic, member(0), s.group(topic, "workers"))
	s.start(t, s.sub(t), topic, member(1), s.group(topic, "workers"))
	const n = 200
	publishN(t, ctx, s.pub(t), topic, n, func(i int) *bus.Message {
		return &bus.Message{Key: strconv.Itoa(i), Body: []byte(strconv.Itoa(i))}
	})
	all.waitUnique(t, n, s.h.Timeout)
	if counts[0].Load() == 0 || counts[1].Load() == 0 {
		t.Fatalf("work not shared: member counts %d and %d", counts[0].Load(), counts[1].Load())
	}
	if c0, c1 := counts[0].Load(), counts[1].Load(); int(c0+c1) > n {
		all.noDuplicates(t)
	}
}

func (s *suite) durableGroup(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	sub := s.sub(t)
	first := s.start(t, sub, topic, newCollector().handler, s.group(topic, "late"))
	if err := first.stop(t, s.h.Timeout); err != nil {
		t.Fatalf("Subscribe returned %v after its context ended, want nil", err)
	}
	ids := publishN(t, ctx, s.pub(t), topic, 20, plain)
	c := newCollector()
	s.start(t, s.sub(t), topic, c.handler, s.group(topic, "late"))
	c.waitUnique(t, len(ids), s.h.Timeout)
}

func (s *suite) unsupported(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	var opts []bus.SubscribeOption
	if !s.caps.Groups {
		opts = append(opts, bus.Group("g"))
	}
	err := s.sub(t).Subscribe(ctx, topic, newCollector().handler, opts...)
	if !errors.Is(err, bus.ErrUnsupported) {
		t.Fatalf("Subscribe with an unsupported grouping returned %v, want ErrUnsupported", err)
	}
}

// deadLetters returns a function that yields the first n messages of the
// dead letter topic dl; it subscribes before the test triggers them.
func (s *suite) deadLetters(t *testing.T, dl string) func(n int) []*bus.Message {
	if s.h.ReadDeadLetters != nil {
		return func(n int) []*bus.Message {
			ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
			defer cancel()
			msgs, err := s.h.ReadDeadLetters(ctx, t, dl, n)
			if err != nil {
				t.Fatalf("reading dead letters of %s: %v", dl, err)
			}
			return msgs
		}
	}
	c := newCollector()
	var opts []bus.SubscribeOption
	if s.caps.Groups {
		opts = append(opts, s.group(dl, "bustest-dead-letters"))
	}
	s.start(t, s.sub(t), dl, c.handler, opts...)
	return func(n int) []*bus.Message {
		c.waitUnique(t, n, s.h.Timeout)
		return c.snapshot()
	}
}

func (s *suite) retryThenDeadLetter(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	dead := s.deadLetters(t, topic+bus.DeadLetterSuffix)
	var attempts atomic.Int32
	okc := newCollector()
	h := func(ctx context.Context, m *bus.Message) error {
		if string(m.Body) == "fail" {
			if a := attempts.Add(1); int(a) != m.Delivery.Attempt {
				t.Errorf("Delivery.Attempt = %d on call %d", m.Delivery.Attempt, a)
			}
			return errors.New("boom: cannot handle")
		}
		return okc.handler(ctx, m)
	}
	s.start(t, s.sub(t), topic, h, append(s.shared(topic), bus.Retry(bus.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Millisecond}))...)
	bad := &bus.Message{Body: []byte("fail"), Metadata: map[string]string{"origin": "bustest"}}
	if err := s.pub(t).Publish(ctx, topic, bad, &bus.Message{Body: []byte("fine")}); err != nil {
		t.Fatal(err)
	}
	got := dead(1)[0]
	okc.waitUnique(t, 1, s.h.Timeout)
	if a := attempts.Load(); a != 3 {
		t.Fatalf("failing handler called %d times, want 3", a)
	}
	if got.ID != bad.ID || string(got.Body) != "fail" || got.Metadata["origin"] != "bustest" {
		t.Fatalf("dead letter is not the failed message: %+v", got)
	}
	if e := got.Metadata[bus.MetaDeadLetterError]; !strings.Contains(e, "boom: cannot handle") {
		t.Errorf("dead letter error metadata = %q", e)
	}
	if a := got.Metadata[bus.MetaDeadLetterAttempts]; a != "3" {
		t.Errorf("dead letter attempts metadata = %q, want 3", a)
	}
	if tp := got.Metadata[bus.MetaDeadLetterTopic]; tp != topic {
		t.Errorf("dead letter topic metadata = %q, want %q", tp, topic)
	}
}

func (s *suite) permanent(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	dead := s.deadLetters(t, topic+bus.DeadLetterSuffix)
	var calls atomic.Int32
	h := func(ctx context.Context, m *bus.Message) error {
		calls.Add(1)
		return bus.Permanent(errors.New("invalid order"))
	}
	s.start(t, s.sub(t), topic, h, s.shared(topic)...)
	m := &bus.Message{Body: []byte("x")}
	if err := s.pub(t).Publish(ctx, topic, m); err != nil {
		t.Fatal(err)
	}
	got := dead(1)[0]
	if got.ID != m.ID || got.Metadata[bus.MetaDeadLetterAttempts] != "1" || calls.Load() != 1 {
		t.Fatalf("permanent error: %d calls, dead letter %+v", calls.Load(), got)
	}
}

func (s *suite) retryForever(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	var calls atomic.Int32
	done := make(chan struct{})
	h := func(ctx context.Context, m *bus.Message) error {
		if calls.Add(1) <= 20 {
			return errors.New("not yet")
		}
		close(done)
		return nil
	}
	s.start(t, s.sub(t), topic, h, append(s.shared(topic), bus.Retry(bus.RetryForever(0, 0)))...)
	if err := s.pub(t).Publish(ctx, topic, &bus.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(s.h.Timeout):
		t.Fatalf("handler called %d times, want 21", calls.Load())
	}
}

func (s *suite) panics(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	c := newCollector()
	var panicked atomic.Int32
	h := func(ctx context.Context, m *bus.Message) error {
		if m.Delivery.Attempt == 1 {
			panicked.Add(1)
			panic("bustest: handler panic")
		}
		return c.handler(ctx, m)
	}
	s.start(t, s.sub(t), topic, h, append(s.shared(topic), bus.Retry(bus.RetryPolicy{MaxAttempts: 2}))...)
	publishN(t, ctx, s.pub(t), topic, 10, plain)
	c.waitUnique(t, 10, s.h.Timeout)
	if panicked.Load() < 10 {
		t.Fatalf("%d panics, want 10", panicked.Load())
	}
}

func (s *suite) orderByKey(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	const keys, per = 5, 100
	var mu sync.Mutex
	next := map[string]int{}
	busy := map[string]bool{}
	c := newCollector()
	h := func(ctx context.Context, m *bus.Message) error {
		mu.Lock()
		if busy[m.Key] {
			t.Errorf("two handlers at once for key %s", m.Key)
		}
		busy[m.Key] = true
		seq, _ := strconv.Atoi(string(m.Body))
		if seq != next[m.Key] && !m.Delivery.Redelivered {
			t.Errorf("key %s: got %d, want %d", m.Key, seq, next[m.Key])
		}
		next[m.Key] = seq + 1
		mu.Unlock()
		c.add(m)
		mu.Lock()
		busy[m.Key] = false
		mu.Unlock()
		return nil
	}
	s.start(t, s.sub(t), topic, h, append(s.shared(topic), bus.Concurrency(8))...)
	p := s.pub(t)
	for i := 0; i < per; i++ {
		msgs := make([]*bus.Message, 0, keys)
		for k := 0; k < keys; k++ {
			msgs = append(msgs, &bus.Message{Key: fmt.Sprintf("key-%d", k), Body: []byte(strconv.Itoa(i))})
		}
		if err := p.Publish(ctx, topic, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	c.waitUnique(t, keys*per, s.h.Timeout)
}

func (s *suite) closeDrains(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	const n, conc = 40, 4
	var started, finished atomic.Int32
	release := make(chan struct{})
	allStarted := make(chan struct{})
	var once sync.Once
	done := newCollector()
	h := func(hctx context.Context, m *bus.Message) error {
		if started.Add(1) >= conc {
			once.Do(func() { close(allStarted) })
		}
		select {
		case <-release:
		case <-hctx.Done():
			t.Errorf("handler context cancelled during a plain Close")
		case <-time.After(s.h.Timeout):
		}
		finished.Add(1)
		return done.handler(hctx, m)
	}
	opts := append(s.shared(topic), bus.Concurrency(conc))
	if s.caps.DurableGroups {
		opts = append(opts, s.group(topic, "drain"))
	}
	sub := s.h.NewSubscriber(t)
	r := s.start(t, sub, topic, h, opts...)
	ids := publishN(t, ctx, s.pub(t), topic, n, func(i int) *bus.Message {
		return &bus.Message{Key: strconv.Itoa(i), Body: []byte(strconv.Itoa(i))}
	})
	select {
	case <-allStarted:
	case <-time.After(s.h.Timeout):
		t.Fatalf("only %d handlers started", started.Load())
	}
	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while %d handlers were still running", err, started.Load()-finished.Load())
	case <-time.After(100 * time.Millisecond): // Close must still be waiting
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(s.h.Timeout):
		t.Fatal("Close did not return after the handlers finished")
	}
	if st, fin := started.Load(), finished.Load(); st != fin {
		t.Fatalf("Close returned with %d handlers unfinished", st-fin)
	}
	if err := r.stop(t, s.h.Timeout); err != nil {
		t.Fatalf("Subscribe returned %v after Close, want nil", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !s.caps.DurableGroups {
		return
	}
	// Nothing is lost: a new member of the group gets everything that was
	// not acknowledged before the Close.
	s.start(t, s.sub(t), topic, done.handler, opts...)
	done.waitUnique(t, len(ids), s.h.Timeout)
}

func (s *suite) afterClose(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	p := s.h.NewPublisher(t)
	sub := s.h.NewSubscriber(t)
	if err := p.Close(); err != nil {
		t.Fatalf("Publisher.Close: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Subscriber.Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Publisher.Close: %v", err)
	}
	if err := p.Publish(ctx, topic, &bus.Message{}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if err := sub.Subscribe(ctx, topic, newCollector().handler, s.shared(topic)...); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func (s *suite) cancelEnds(t *testing.T) {
	topic := s.topic(t)
	r := s.start(t, s.sub(t), topic, newCollector().handler, s.shared(topic)...)
	if err := r.stop(t, s.h.Timeout); err != nil {
		t.Fatalf("Subscribe returned %v after its context was cancelled, want nil", err)
	}
}

func (s *suite) badInput(t *testing.T) {
	ctx := s.ctx(t)
	topic := s.topic(t)
	p, sub := s.pub(t), s.sub(t)
	big := strings.Repeat("x", bus.MaxMetadataBytes+1)
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"publish empty topic", p.Publish(ctx, "", &bus.Message{}), bus.ErrInvalid},
		{"publish nil message", p.Publish(ctx, topic, nil), bus.ErrInvalid},
		{"oversized metadata", p.Publish(ctx, topic, &bus.Message{Metadata: map[string]string{"big": big}}), bus.ErrTooLarge},
		{"reserved metadata key", p.Publish(ctx, topic, &bus.Message{Metadata: map[string]string{"ce_id": "x"}}), bus.ErrInvalid},
		{"empty metadata key", p.Publish(ctx, topic, &bus.Message{Metadata: map[string]string{"": "x"}}), bus.ErrInvalid},
		{"subscribe empty topic", sub.Subscribe(ctx, "", newCollector().handler), bus.ErrInvalid},
		{"subscribe nil handler", sub.Subscribe(ctx, topic, nil), bus.ErrInvalid},
		{"zero concurrency", sub.Subscribe(ctx, topic, newCollector().handler, append(s.shared(topic), bus.Concurrency(0))...), bus.ErrInvalid},
		{"zero attempts", sub.Subscribe(ctx, topic, newCollector().handler, append(s.shared(topic), bus.Retry(bus.RetryPolicy{}))...), bus.ErrInvalid},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
}
