package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataapi "github.com/segmentio/kafka-go/protocol/metadata"
	produceapi "github.com/segmentio/kafka-go/protocol/produce"

	"github.com/busline/bus"
)

// producer sends records to the partition leaders with kafka-go's
// Transport, batching by demand instead of by timer. The records of a
// partition wait in its queue; each broker has a sender that, while no
// request of its own is in flight, takes what waits in every queue of the
// partitions it leads and sends it all in one produce request (Kafka's
// Produce API carries many partitions). The records that arrive while a
// request is in flight gather and go together in the next one, so many
// concurrent single-record callers share requests. A partition has at most
// one batch in flight at a time, retries included, so records keep their
// order within a partition; brokers are written in parallel.
//
// kafka-go's own Writer holds every partial batch for its batch timeout
// and so makes a lone caller wait out the timer on every call; with many
// concurrent single-message callers that wait is most of their time.
type producer struct {
	client      *kafkago.Client
	acks        kafkago.RequiredAcks
	compression kafkago.Compression
	linger      time.Duration // wait before an idle broker's first request
	maxRecords  int           // records per partition in a request
	maxBytes    int           // bytes per partition in a request (a record batch)
	timeout     time.Duration // per request
	balancer    kafkago.Murmur2Balancer

	// mu guards the queues, the senders and their state.
	mu      sync.Mutex
	queues  map[partitionKey]*partitionQueue
	senders map[int]*brokerSender // by broker ID
	wg      sync.WaitGroup        // running senders and retries
	running atomic.Int64          // the same count, readable
	meta    sync.Map              // topic → *topicLayout, the last one read

	// Produce requests sent and the records in them, retries included
	// (read by the benchmarks).
	requests, records atomic.Int64
	// beforeRequest, set by tests only, sees each request's batches (not a
	// retry's) just before it is sent, and may hold it there.
	beforeRequest func([]partBatch)
}

type partitionKey struct {
	topic     string
	partition int
}

// partitionQueue holds the records of one partition not yet sent.
type partitionQueue struct {
	key     partitionKey
	leader  int // the broker leading the partition, as last read
	pending []pendingRecord
	busy    bool // a batch of the partition is in flight or retrying: the rest waits
	ready   bool // listed in its leader's sender
}

// brokerSender sends the requests to one broker, one at a time.
type brokerSender struct {
	id      int
	ready   []*partitionQueue // partitions with records waiting and none in flight
	running bool              // a goroutine runs the sender
}

// partBatch is the records of one partition in one request.
type partBatch struct {
	q    *partitionQueue
	recs []pendingRecord
}

type pendingRecord struct {
	msg  *kafkago.Message
	size int
	w    *write
	i    int // the record's index in its Publish call
}

// write is one call's records in flight, resolved one by one.
type write struct {
	ctx    context.Context // the caller's: once it ends, unsent records are dropped
	mu     sync.Mutex
	left   int
	failed []int // indexes of the records that failed
	err    error // the first failure
	done   chan struct{}
}

func (w *write) resolve(i int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failed = append(w.failed, i)
		if w.err == nil {
			w.err = err
		}
	}
	w.left--
	if w.left == 0 {
		close(w.done)
	}
}

// send partitions kms among topic's partitions (murmur2 of the key, random
// without one), queues them and waits until every one is acknowledged or
// has failed, or ctx ends. A record whose request failed with an error a
// retry could cure was sent again (see retry) and may be stored twice. The
// returned error counts the failed records and wraps the first failure.
func (p *producer) send(ctx context.Context, topic string, kms []kafkago.Message) error {
	layout, err := p.layout(ctx, topic)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // nothing queued yet: nothing is sent
	}
	w := &write{ctx: ctx, left: len(kms), done: make(chan struct{})}
	recs := make([]pendingRecord, len(kms))
	parts := make([]int, len(kms)) // index into layout.ids
	for i := range kms {
		km := &kms[i]
		recs[i] = pendingRecord{msg: km, size: recordSize(km), w: w, i: i}
		parts[i] = layout.index(p.balancer.Balance(*km, layout.ids...))
	}
	p.enqueue(topic, layout, recs, parts)
	select {
	case <-w.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	switch {
	case len(w.failed) == 0:
		return nil
	case len(w.failed) == len(kms):
		return w.err
	}
	// Some records were stored: say which were not.
	slices.Sort(w.failed)
	return &bus.PublishError{Failed: w.failed, Err: w.err}
}

func bytesOrNil(b []byte) kafkago.Bytes {
	if b == nil {
		return nil
	}
	return kafkago.NewBytes(b)
}

// enqueue appends each record to its partition's queue (parts[i] indexes
// layout) and lists the partitions that have nothing in flight with their
// leaders' senders, starting those not running.
func (p *producer) enqueue(topic string, layout *topicLayout, recs []pendingRecord, parts []int) {
	var start []*brokerSender
	p.mu.Lock()
	for i, r := range recs {
		j := parts[i]
		k := partitionKey{topic, layout.ids[j]}
		q := p.queues[k]
		if q == nil {
			q = &partitionQueue{key: k}
			p.queues[k] = q
		}
		q.leader = layout.leaders[j]
		q.pending = append(q.pending, r)
		if b := p.schedule(q); b != nil {
			start = append(start, b)
		}
	}
	p.mu.Unlock()
	for _, b := range start {
		go p.run(b)
	}
}

// schedule lists q with its leader's sender when it has records waiting
// and none in flight. It returns the sender when it has to be started (it
// is then marked running and counted). p.mu is held.
func (p *producer) schedule(q *partitionQueue) *brokerSender {
	if q.busy || q.ready || len(q.pending) == 0 {
		return nil
	}
	b := p.senders[q.leader]
	if b == nil {
		b = &brokerSender{id: q.leader}
		p.senders[q.leader] = b
	}
	q.ready = true
	b.ready = append(b.ready, q)
	if b.running {
		return nil
	}
	b.running = true
	p.wg.Add(1)
	p.running.Add(1)
	return b
}

// run sends the broker's requests, one at a time, until no partition it
// leads has records waiting.
func (p *producer) run(b *brokerSender) {
	defer p.wg.Done()
	defer p.running.Add(-1)
	if p.linger > 0 {
		time.Sleep(p.linger)
	} else {
		runtime.Gosched() // as below, for callers woken with the one that started it
	}
	for {
		parts := p.take(b)
		if parts == nil {
			return
		}
		p.produce(parts)
		// Let the callers just resolved, and any others ready to run,
		// queue their next records before the next request is cut: with
		// many single-record callers this fills requests that would
		// otherwise leave with one or two records. With nothing else to
		// run it returns at once.
		runtime.Gosched()
	}
}

// take cuts the next request of b: a batch from each listed partition (up
// to maxRecords and maxBytes each, the request up to maxRequestBytes),
// marking those partitions busy. It drops, resolving them with their
// caller's error, the records whose caller gave up before they were sent,
// so that a Publish that returned an error does not publish later. It
// returns nil, and marks b stopped, when nothing is left to send.
func (p *producer) take(b *brokerSender) []partBatch {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []partBatch
	total, used := 0, 0
	for _, q := range b.ready {
		if total >= p.maxRequestBytes() && len(parts) > 0 {
			break // the rest waits for the next request
		}
		used++
		q.ready = false
		kept := q.pending[:0]
		for _, r := range q.pending {
			if err := r.w.ctx.Err(); err != nil {
				r.w.resolve(r.i, err)
				continue
			}
			kept = append(kept, r)
		}
		clear(q.pending[len(kept):])
		q.pending = kept
		n, bytes := 0, 0
		for n < len(q.pending) && n < p.maxRecords && (n == 0 || bytes+q.pending[n].size <= p.maxBytes) {
			bytes += q.pending[n].size
			n++
		}
		if n == 0 {
			continue
		}
		total += bytes
		q.busy = true
		parts = append(parts, partBatch{q: q, recs: q.pending[:n:n]})
		q.pending = q.pending[n:]
		if len(q.pending) == 0 {
			q.pending = nil // let the array go
		}
	}
	rest := copy(b.ready, b.ready[used:])
	clear(b.ready[rest:])
	b.ready = b.ready[:rest]
	if len(parts) == 0 {
		b.running = false
	}
	return parts
}

// maxRequestBytes bounds the records of one request to a broker, kept
// well under brokers' default socket.request.max.bytes (100 MiB).
func (p *producer) maxRequestBytes() int { return max(p.maxBytes, 16<<20) }

// produce sends parts (all of one broker) in one request and settles each
// partition's batch from its own result: stored, failed, or handed to
// retry after an error a retry can cure.
func (p *producer) produce(parts []partBatch) {
	start := time.Now()
	errs, ok := p.request(parts)
	for i, pb := range parts {
		err := errs[i]
		if !ok || (err != nil && retriable(err)) {
			// Sent again alone, to the partition's leader of the moment;
			// the partition stays busy until then.
			p.wg.Add(1)
			p.running.Add(1)
			go p.retry(pb, err, start, !ok)
			continue
		}
		p.settle(pb, err)
	}
}

// settle resolves a partition's batch with err and lets the partition's
// next records go.
func (p *producer) settle(pb partBatch, err error) {
	for _, r := range pb.recs {
		r.w.resolve(r.i, err)
	}
	p.mu.Lock()
	pb.q.busy = false
	b := p.schedule(pb.q)
	p.mu.Unlock()
	if b != nil {
		go p.run(b)
	}
}

// request sends one produce request carrying every batch of parts (all
// led by one broker) and returns each one's result. ok is false when the
// request could not be routed as one (the leaders moved between the
// metadata read and the request): each batch must then be sent alone.
func (p *producer) request(parts []partBatch) (errs []error, ok bool) {
	req := &produceapi.Request{Acks: int16(p.acks), Timeout: int32((p.timeout / 2).Milliseconds())}
	attrs := protocol.Attributes(p.compression) & 0x7
	for _, pb := range parts {
		k := pb.q.key
		i := slices.IndexFunc(req.Topics, func(t produceapi.RequestTopic) bool { return t.Topic == k.topic })
		if i < 0 {
			i = len(req.Topics)
			req.Topics = append(req.Topics, produceapi.RequestTopic{Topic: k.topic})
		}
		t := &req.Topics[i]
		t.Partitions = append(t.Partitions, produceapi.RequestPartition{
			Partition: int32(k.partition),
			RecordSet: protocol.RecordSet{Attributes: attrs, Records: records(pb.recs)},
		})
	}
	errs = make([]error, len(parts))
	p.count(parts...)
	if p.beforeRequest != nil {
		p.beforeRequest(parts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	m, err := p.client.Transport.RoundTrip(ctx, p.client.Addr, req)
	cancel()
	var routing *produceapi.Error
	switch {
	case errors.As(err, &routing):
		return errs, false
	case err != nil:
		for i := range errs {
			errs[i] = err
		}
		return errs, true
	case p.acks == kafkago.RequireNone:
		return errs, true
	}
	answered := make([]bool, len(parts))
	res, _ := m.(*produceapi.Response)
	if res == nil {
		res = &produceapi.Response{} // every batch without a result
	}
	for _, t := range res.Topics {
		for _, rp := range t.Partitions {
			for i, pb := range parts {
				if pb.q.key.topic == t.Topic && pb.q.key.partition == int(rp.Partition) {
					errs[i], answered[i] = partitionError(rp.ErrorCode, rp.ErrorMessage), true
				}
			}
		}
	}
	for i, pb := range parts {
		if !answered[i] {
			errs[i] = fmt.Errorf("%w: no result for partition %d of %q", protocol.ErrNoPartition, pb.q.key.partition, pb.q.key.topic)
		}
	}
	return errs, true
}

func (p *producer) count(parts ...partBatch) {
	p.requests.Add(1)
	for _, pb := range parts {
		p.records.Add(int64(len(pb.recs)))
	}
}

// records builds the kafka-go records of a batch. Records are read as they
// are written, so every attempt needs fresh ones.
func records(batch []pendingRecord) kafkago.RecordReader {
	recs := make([]kafkago.Record, len(batch))
	for i, r := range batch {
		recs[i] = kafkago.Record{Time: r.msg.Time, Key: bytesOrNil(r.msg.Key), Value: kafkago.NewBytes(r.msg.Value), Headers: r.msg.Headers}
	}
	return kafkago.NewRecordReader(recs...)
}

func partitionError(code int16, msg string) error {
	switch {
	case code == 0:
		return nil
	case msg == "":
		return kafkago.Error(code)
	}
	return fmt.Errorf("%w: %s", kafkago.Error(code), msg)
}

// retry sends a partition's batch alone after the request started at
// start failed with err (at once when now: that request was never sent),
// backing off from 100ms to 1s, for as long as one request may take
// (write_timeout, from start): long enough for the transport's metadata
// (refreshed every second) to find a partition's new leader. Then it
// settles the batch.
func (p *producer) retry(pb partBatch, err error, start time.Time, now bool) {
	defer p.wg.Done()
	defer p.running.Add(-1)
	k := pb.q.key
	deadline := start.Add(p.timeout)
	for fails := 0; ; {
		if !now {
			wait := min(100*time.Millisecond<<min(fails, 4), time.Second)
			if time.Now().Add(wait).After(deadline) {
				break
			}
			time.Sleep(wait)
			fails++
		}
		now = false
		p.count(pb)
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		var res *kafkago.ProduceResponse
		res, err = p.client.Produce(ctx, &kafkago.ProduceRequest{
			Topic:        k.topic,
			Partition:    k.partition,
			RequiredAcks: p.acks,
			Compression:  p.compression,
			Records:      records(pb.recs),
		})
		cancel()
		if err == nil && res != nil && res.Error != nil {
			err = res.Error
		}
		if err == nil || !retriable(err) {
			break
		}
	}
	p.settle(pb, err)
}

// retriable reports errors after which sending the same request again can
// succeed: Kafka's retriable error codes (a leader moving, a partition not
// yet available) and a connection lost or refused under the request.
func retriable(err error) bool {
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary()
	}
	return connectionLost(err) || errors.Is(err, syscall.ECONNREFUSED)
}

// connectionLost reports an error from a connection that closed or was
// reset under a request.
func connectionLost(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// topicLayout is a topic's partitions as the transport's metadata cache
// last had them.
type topicLayout struct {
	from    *metadataapi.ResponsePartition // the cache entry it was read from
	ids     []int                          // partition IDs, sorted
	leaders []int                          // the leader of each of ids
}

// index returns the index of partition id in l.ids.
func (l *topicLayout) index(id int) int {
	if id < len(l.ids) && l.ids[id] == id {
		return id
	}
	i, _ := slices.BinarySearch(l.ids, id)
	return i
}

// layout returns topic's partitions and their leaders from the transport's
// metadata cache (refreshed every MetadataTTL), reusing the last layout
// built while the cache holds the same entry.
func (p *producer) layout(ctx context.Context, topic string) (*topicLayout, error) {
	m, err := p.client.Transport.RoundTrip(ctx, p.client.Addr, &metadataapi.Request{TopicNames: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("read metadata of %q: %w", topic, err)
	}
	for _, t := range m.(*metadataapi.Response).Topics {
		if t.Name != topic {
			continue
		}
		if t.ErrorCode != 0 {
			return nil, fmt.Errorf("metadata of %q: %w", topic, kafkago.Error(t.ErrorCode))
		}
		if len(t.Partitions) == 0 {
			break
		}
		if l, ok := p.meta.Load(topic); ok && l.(*topicLayout).from == &t.Partitions[0] {
			return l.(*topicLayout), nil
		}
		// murmur2 picks by index into the sorted IDs, as the Java client
		// does, so that every client puts a key on the same partition.
		parts := slices.SortedFunc(slices.Values(t.Partitions), func(a, b metadataapi.ResponsePartition) int {
			return int(a.PartitionIndex) - int(b.PartitionIndex)
		})
		l := &topicLayout{from: &t.Partitions[0], ids: make([]int, len(parts)), leaders: make([]int, len(parts))}
		for i, pt := range parts {
			l.ids[i] = int(pt.PartitionIndex)
			l.leaders[i] = int(pt.LeaderID)
		}
		p.meta.Store(topic, l)
		return l, nil
	}
	return nil, fmt.Errorf("metadata of %q: %w", topic, kafkago.UnknownTopicOrPartition)
}

// wait waits for the running senders, at most until ctx ends.
func (p *producer) wait(ctx context.Context) error {
	if p.running.Load() == 0 {
		return nil
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
