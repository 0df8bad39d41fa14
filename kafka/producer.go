package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	metadataapi "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/busline/bus"
)

// producer sends records to the partition leaders with kafka-go's Client,
// batching by demand instead of by timer: a partition with no produce
// request in flight sends what it has at once; while one is in flight, the
// records that arrive gather and go together in the next request. One
// request per partition is in flight at a time, so records keep their
// order within a partition, retries included; the partitions of a topic
// are written in parallel.
//
// kafka-go's own Writer holds every partial batch for its batch timeout
// and so makes a lone caller wait out the timer on every call; with many
// concurrent single-message callers that wait is most of their time.
type producer struct {
	client      *kafkago.Client
	acks        kafkago.RequiredAcks
	compression kafkago.Compression
	linger      time.Duration // wait before an idle partition's first request
	maxRecords  int           // records per request
	maxBytes    int           // bytes per request (a record batch)
	timeout     time.Duration // per request
	balancer    kafkago.Murmur2Balancer

	mu      sync.Mutex
	queues  map[partitionKey]*partitionQueue
	wg      sync.WaitGroup // running senders
	running atomic.Int64   // the same count, readable

	// Produce requests sent and the records in them, retries included
	// (read by the benchmarks).
	requests, records atomic.Int64
}

type partitionKey struct {
	topic     string
	partition int
}

// partitionQueue holds the records of one partition not yet sent.
type partitionQueue struct {
	mu      sync.Mutex
	pending []pendingRecord
	sending bool // a sender goroutine owns the partition
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
// retry could cure was sent again (see produce) and may be stored twice. The returned error counts the failed records and wraps the first
// failure.
func (p *producer) send(ctx context.Context, topic string, kms []kafkago.Message) error {
	parts, err := p.partitions(ctx, topic)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // nothing queued yet: nothing is sent
	}
	w := &write{ctx: ctx, left: len(kms), done: make(chan struct{})}
	// Group by partition first, so each queue is locked once per call.
	byPart := make(map[int][]pendingRecord, len(parts))
	for i := range kms {
		km := &kms[i]
		id := p.balancer.Balance(*km, parts...)
		byPart[id] = append(byPart[id], pendingRecord{msg: km, size: recordSize(km), w: w, i: i})
	}
	for id, recs := range byPart {
		p.enqueue(partitionKey{topic, id}, recs)
	}
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

// enqueue appends recs to the partition's queue and starts its sender when
// none runs.
func (p *producer) enqueue(k partitionKey, recs []pendingRecord) {
	p.mu.Lock()
	q := p.queues[k]
	if q == nil {
		q = &partitionQueue{}
		p.queues[k] = q
	}
	p.mu.Unlock()
	q.mu.Lock()
	q.pending = append(q.pending, recs...)
	start := !q.sending
	q.sending = true
	q.mu.Unlock()
	if start {
		p.wg.Add(1)
		p.running.Add(1)
		go p.run(k, q)
	}
}

// run sends the partition's records, a request at a time, until its queue
// is empty.
func (p *producer) run(k partitionKey, q *partitionQueue) {
	defer p.wg.Done()
	defer p.running.Add(-1)
	if p.linger > 0 {
		time.Sleep(p.linger)
	}
	for {
		q.mu.Lock()
		// Records whose caller gave up before they were sent are dropped,
		// so that a Publish that returned an error does not publish later.
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
			q.sending = false
			q.mu.Unlock()
			return
		}
		batch := q.pending[:n:n]
		q.pending = q.pending[n:]
		if len(q.pending) == 0 {
			q.pending = nil // let the array go
		}
		q.mu.Unlock()
		err := p.produce(k, batch)
		for _, r := range batch {
			r.w.resolve(r.i, err)
		}
	}
}

// produce sends one request, and sends it again after errors a retry can
// cure, backing off from 100ms to 1s, for as long as one request may take
// (write_timeout): long enough for the transport's metadata (refreshed
// every second) to find a partition's new leader.
func (p *producer) produce(k partitionKey, batch []pendingRecord) error {
	var err error
	deadline := time.Now().Add(p.timeout)
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			wait := min(100*time.Millisecond<<min(attempt-2, 4), time.Second)
			if time.Now().Add(wait).After(deadline) {
				return err
			}
			time.Sleep(wait)
		}
		// Records are read as they are written, so every attempt gets
		// fresh ones.
		recs := make([]kafkago.Record, len(batch))
		for i, r := range batch {
			recs[i] = kafkago.Record{Time: r.msg.Time, Key: bytesOrNil(r.msg.Key), Value: kafkago.NewBytes(r.msg.Value), Headers: r.msg.Headers}
		}
		p.requests.Add(1)
		p.records.Add(int64(len(batch)))
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		var res *kafkago.ProduceResponse
		res, err = p.client.Produce(ctx, &kafkago.ProduceRequest{
			Topic:        k.topic,
			Partition:    k.partition,
			RequiredAcks: p.acks,
			Compression:  p.compression,
			Records:      kafkago.NewRecordReader(recs...),
		})
		cancel()
		if err == nil && res != nil && res.Error != nil {
			err = res.Error
		}
		if err == nil || !retriable(err) {
			return err
		}
	}
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

// partitions returns topic's partition IDs from the transport's metadata
// cache (refreshed every MetadataTTL).
func (p *producer) partitions(ctx context.Context, topic string) ([]int, error) {
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
		// murmur2 picks by index into the sorted IDs, as the Java client
		// does, so that every client puts a key on the same partition.
		ids := make([]int, len(t.Partitions))
		for i, pt := range t.Partitions {
			ids[i] = int(pt.PartitionIndex)
		}
		slices.Sort(ids)
		if len(ids) > 0 {
			return ids, nil
		}
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
