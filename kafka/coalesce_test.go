package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/ce"
)

// requestGate holds a publisher's first produce request just before it is
// sent, until released, and records which messages (by ID) each request
// carried, per partition.
type requestGate struct {
	held    chan struct{} // closed once the first request is held
	release chan struct{} // closed by the test to let it go
	mu      sync.Mutex
	reqs    []map[string][]string // per request: "topic/partition" → message IDs
}

func holdFirstRequest(t *testing.T, p *Publisher) *requestGate {
	g := &requestGate{held: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open)
	p.prod.beforeRequest = func(parts []partBatch) {
		req := map[string][]string{}
		for _, pb := range parts {
			k := fmt.Sprint(pb.q.key.topic, "/", pb.q.key.partition)
			for _, r := range pb.recs {
				req[k] = append(req[k], headerValue(r.msg, ce.KafkaPrefix+"id"))
			}
		}
		g.mu.Lock()
		g.reqs = append(g.reqs, req)
		first := len(g.reqs) == 1
		g.mu.Unlock()
		if first {
			close(g.held)
			<-g.release // bounded by the test: released below or at cleanup
		}
	}
	return g
}

func (g *requestGate) open() {
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

func (g *requestGate) waitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-g.held:
	case <-time.After(30 * time.Second):
		t.Fatal("no produce request within 30s")
	}
}

// requestOf returns the IDs that shared a request with id.
func (g *requestGate) requestOf(id string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, req := range g.reqs {
		for _, ids := range req {
			if slices.Contains(ids, id) {
				var all []string
				for _, ids := range req {
					all = append(all, ids...)
				}
				return all
			}
		}
	}
	return nil
}

// batchOf returns the IDs that shared a partition batch with id.
func (g *requestGate) batchOf(id string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, req := range g.reqs {
		for _, ids := range req {
			if slices.Contains(ids, id) {
				return ids
			}
		}
	}
	return nil
}

func headerValue(km *kafkago.Message, key string) string {
	for _, h := range km.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// pendingIn returns how many records wait in the queue of a partition.
func pendingIn(p *Publisher, topic string, partition int) int {
	p.prod.mu.Lock()
	defer p.prod.mu.Unlock()
	if q := p.prod.queues[partitionKey{topic, partition}]; q != nil {
		return len(q.pending)
	}
	return 0
}

// newLimitedTopic creates a topic (and its dead letter topic) whose
// brokers refuse record batches over limit bytes: the topic's
// max.message.bytes, which kfake and real clusters both honour.
func newLimitedTopic(t *testing.T, cfg Config, partitions, limit int) string {
	t.Helper()
	name := fmt.Sprintf("busline-%s-%d-%d", sanitize(t.Name()), time.Now().UnixNano()%1e9, topicSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := newConn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, done := c.admin()
	defer done()
	resp, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: name, NumPartitions: partitions, ReplicationFactor: -1,
		ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(limit)}},
	}}})
	if err == nil {
		err = resp.Errors[name]
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	if err := CreateTopic(ctx, cfg, name+bus.DeadLetterSuffix, partitions, 0); err != nil {
		t.Fatalf("create topic %s: %v", name+bus.DeadLetterSuffix, err)
	}
	return name
}

// keysOn returns n keys murmur2 puts on partition part of partitions, and
// n that it puts elsewhere.
func keysOn(part, partitions, n int) (on, off []string) {
	return keysWhere(partitions, n, func(p int) bool { return p == part })
}

// keysWhere returns n keys murmur2 puts on the partitions (of partitions)
// for which in holds, and n that it puts on the others (fewer when there
// are none such among the first 100,000 keys).
func keysWhere(partitions, n int, in func(int) bool) (on, off []string) {
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	for i := 0; (len(on) < n || len(off) < n) && i < 100_000; i++ {
		k := fmt.Sprint("key", i)
		if in((kafkago.Murmur2Balancer{}).Balance(kafkago.Message{Key: []byte(k)}, ids...)) {
			if len(on) < n {
				on = append(on, k)
			}
		} else if len(off) < n {
			off = append(off, k)
		}
	}
	return on, off
}

// consumeIDs reads topic with a group until want IDs arrived (or 60s
// pass) and returns how often each ID arrived.
func consumeIDs(t *testing.T, cfg Config, topic string, want int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	n := 0
	done := make(chan struct{})
	subscribe(t, newTestSubscriber(t, cfg), topic, func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got[m.ID]++
		if n++; n == want {
			close(done)
		}
		return nil
	}, bus.Group("check"))
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("consumed %d of %d messages in 60s: %v", n, want, got)
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(got)
}

// Concurrent single-message callers share produce requests; when the
// broker refuses one partition's batch in such a request (here it holds a
// record over the topic's max.message.bytes), exactly the callers whose
// records were in that batch get the error; the callers in the same
// request on other partitions, and those whose records went in other
// requests, succeed, and their messages are stored once.
func TestCoalescedFailureGoesToItsCallers(t *testing.T) {
	t.Parallel()
	const limit, partitions, hot = 100_000, 4, 1
	cfg := testConfig(brokers(t))
	topic := newLimitedTopic(t, cfg, partitions, limit)
	pub := newTestPublisher(t, cfg)
	gate := holdFirstRequest(t, pub)
	on, off := keysOn(hot, partitions, 8)

	publish := func(id, key string, body []byte) <-chan error {
		res := make(chan error, 1)
		go func() {
			res <- pub.Publish(context.Background(), topic, &bus.Message{ID: id, Key: key, Body: body})
		}()
		return res
	}
	// The first request (one record, on the hot partition) is held in
	// flight; everything published meanwhile gathers behind it.
	plug := publish("plug", on[0], []byte("plug"))
	gate.waitHeld(t)
	results := map[string]<-chan error{}
	for i, k := range on {
		results[fmt.Sprint("on", i)] = publish(fmt.Sprint("on", i), k, []byte("small"))
	}
	results["big"] = publish("big", on[0], make([]byte, 2*limit))
	for i, k := range off {
		results[fmt.Sprint("off", i)] = publish(fmt.Sprint("off", i), k, []byte("small"))
	}
	waitFor(t, 30*time.Second, "the hot partition's records queued behind the held request", func() bool {
		return pendingIn(pub, topic, hot) == len(on)+1
	})
	gate.open()

	wait := func(id string, res <-chan error) error {
		select {
		case err := <-res:
			return err
		case <-time.After(60 * time.Second):
			t.Fatalf("Publish of %s did not return within 60s", id)
			return nil
		}
	}
	if err := wait("plug", plug); err != nil {
		t.Fatalf("Publish of the held message: %v", err)
	}
	errs := map[string]error{}
	for id, res := range results {
		errs[id] = wait(id, res)
	}
	failed := gate.batchOf("big")
	if len(failed) != len(on)+1 {
		t.Fatalf("the big record's batch held %v; want it and the %d records queued with it", failed, len(on))
	}
	stored := 1 // plug
	for id, err := range errs {
		switch {
		case slices.Contains(failed, id):
			if !errors.Is(err, bus.ErrTooLarge) {
				t.Errorf("Publish of %s (in the refused batch) = %v; want bus.ErrTooLarge", id, err)
			}
		case err != nil:
			t.Errorf("Publish of %s (not in the refused batch) = %v; want nil", id, err)
		default:
			stored++
		}
	}
	gate.mu.Lock()
	n := len(gate.reqs)
	gate.mu.Unlock()
	if n >= len(results)+1 {
		t.Errorf("%d produce requests for %d single-message calls: none were shared", n, len(results)+1)
	}

	got := consumeIDs(t, cfg, topic, stored)
	for id, n := range got {
		if slices.Contains(failed, id) || n != 1 {
			t.Errorf("message %s stored %d times (refused batch: %v)", id, n, failed)
		}
	}
}

// A caller whose ctx ends while its record is in a request in flight
// returns ctx's error at once; the callers sharing or queued behind that
// request are not disturbed and return nil once their records are stored.
// A caller whose ctx ends while its record still waits for a request
// returns too, and its record is never sent.
func TestCtxEndsWhileCoalescedInFlight(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	topic := newTopic(t, cfg, 1)
	pub := newTestPublisher(t, cfg)
	gate := holdFirstRequest(t, pub)

	publish := func(ctx context.Context, id string) <-chan error {
		res := make(chan error, 1)
		go func() { res <- pub.Publish(ctx, topic, &bus.Message{ID: id, Body: []byte(id)}) }()
		return res
	}
	wait := func(what string, res <-chan error) error {
		t.Helper()
		select {
		case err := <-res:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not return within 30s", what)
			return nil
		}
	}

	inFlightCtx, cancelInFlight := context.WithCancel(context.Background())
	defer cancelInFlight()
	inFlight := publish(inFlightCtx, "in-flight")
	gate.waitHeld(t)
	var others []<-chan error
	for i := range 4 {
		others = append(others, publish(context.Background(), fmt.Sprint("other", i)))
	}
	queuedCtx, cancelQueued := context.WithCancel(context.Background())
	defer cancelQueued()
	queued := publish(queuedCtx, "queued")
	waitFor(t, 30*time.Second, "five records queued behind the held request", func() bool {
		return pendingIn(pub, topic, 0) == 5
	})

	cancelInFlight()
	if err := wait("the in-flight Publish after its ctx ended", inFlight); !errors.Is(err, context.Canceled) {
		t.Fatalf("in-flight Publish after its ctx ended = %v; want context.Canceled", err)
	}
	cancelQueued()
	if err := wait("the queued Publish after its ctx ended", queued); !errors.Is(err, context.Canceled) {
		t.Fatalf("queued Publish after its ctx ended = %v; want context.Canceled", err)
	}
	gate.open()
	for i, res := range others {
		if err := wait(fmt.Sprint("other", i), res); err != nil {
			t.Errorf("Publish of other%d = %v; want nil", i, err)
		}
	}
	if err := pub.Publish(context.Background(), topic, &bus.Message{ID: "last"}); err != nil {
		t.Fatal(err)
	}

	// One partition: the records arrive in order, so once "last" is in,
	// "queued" would have been too.
	got := consumeIDs(t, cfg, topic, 6)
	for _, id := range []string{"in-flight", "other0", "other1", "other2", "other3", "last"} {
		if got[id] != 1 {
			t.Errorf("message %s stored %d times; want once (got %v)", id, got[id], got)
		}
	}
	if got["queued"] != 0 {
		t.Errorf("the record whose caller gave up before it was sent was stored")
	}
	if b := gate.batchOf("other0"); len(b) != 4 {
		t.Errorf("the request after the held one carried %v; want the four records queued behind it", b)
	}
}

// Records for partitions of different topics led by one broker go in one
// request, and each caller gets its own result.
func TestCoalescedAcrossTopics(t *testing.T) {
	t.Parallel()
	const partitions = 4
	cfg := testConfig(brokers(t))
	pub := newTestPublisher(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	layoutOf := func(topic string) *topicLayout {
		if err := pub.ensureTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
		l, err := pub.prod.layout(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// Hold a request to a broker leading partitions of both topics, then
	// queue records for those partitions. A cluster places leaders as it
	// likes: new second topics until one shares a leader with the first.
	topics := []string{newTopic(t, cfg, partitions), ""}
	layouts := []*topicLayout{layoutOf(topics[0]), nil}
	leader := -1
	for try := 0; leader < 0; try++ {
		if try == 5 {
			t.Fatalf("5 topics of %d partitions, none with a leader in common with %v", partitions, layouts[0].leaders)
		}
		topics[1] = newTopic(t, cfg, partitions)
		layouts[1] = layoutOf(topics[1])
		for _, id := range layouts[0].leaders {
			if slices.Contains(layouts[1].leaders, id) {
				leader = id
			}
		}
	}
	led := func(l *topicLayout) func(int) bool {
		return func(p int) bool { return l.leaders[l.index(p)] == leader }
	}
	gate := holdFirstRequest(t, pub)
	plugKey, _ := keysWhere(partitions, 1, led(layouts[0]))
	plug := make(chan error, 1)
	go func() {
		plug <- pub.Publish(ctx, topics[0], &bus.Message{ID: "plug", Key: plugKey[0], Body: []byte("plug")})
	}()
	gate.waitHeld(t)
	type call struct {
		id  string
		res chan error
	}
	var calls []call
	queued := 0
	for ti, topic := range topics {
		on, off := keysWhere(partitions, 4, led(layouts[ti]))
		for i, k := range append(on, off...) {
			c := call{id: fmt.Sprint(topic, "-", i), res: make(chan error, 1)}
			calls = append(calls, c)
			go func() { c.res <- pub.Publish(ctx, topic, &bus.Message{ID: c.id, Key: k, Body: []byte(c.id)}) }()
		}
		queued += len(on)
	}
	waitFor(t, 30*time.Second, "the held broker's records queued", func() bool {
		n := 0
		for ti, topic := range topics {
			for p := range partitions {
				if led(layouts[ti])(p) {
					n += pendingIn(pub, topic, p)
				}
			}
		}
		return n == queued
	})
	gate.open()
	if err := <-plug; err != nil {
		t.Fatalf("Publish of the held message: %v", err)
	}
	for _, c := range calls {
		select {
		case err := <-c.res:
			if err != nil {
				t.Errorf("Publish of %s = %v", c.id, err)
			}
		case <-ctx.Done():
			t.Fatalf("Publish of %s did not return", c.id)
		}
	}
	// The first record queued for the held broker shared its request with
	// the other topic's.
	req := gate.requestOf(fmt.Sprint(topics[0], "-0"))
	if !slices.ContainsFunc(req, func(id string) bool { return strings.HasPrefix(id, topics[1]+"-") }) {
		t.Errorf("the request after the held one carried %v; want records of both topics", req)
	}
	for ti, topic := range topics {
		want := 8
		if ti == 0 {
			want++ // plug
		}
		for id, n := range consumeIDs(t, cfg, topic, want) {
			if n != 1 {
				t.Errorf("message %s stored %d times", id, n)
			}
		}
	}
}
