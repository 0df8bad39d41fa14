package redispubsub

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
)

// Concurrent single-message publishes share round trips: the first few
// concurrent callers send their own PUBLISH; callers beyond them queue it,
// and a flusher takes whatever is queued and sends it in one pipeline, so
// that callers arriving while a pipeline is in flight go out together in
// the next. Each caller still returns only with its own
// reply: a failure reaches exactly the callers whose commands failed.

// flushers is how many pipelines may be in flight at once. One measured
// best: callers that arrive during a round trip all go in the next one
// (2 flushers halved the batches and gave 15% less, 8 gave half).
const flushers = 1

// directSlots is how many callers send their own command at once, with
// no hand-off: a few concurrent callers pay nothing for coalescing, and
// only the callers beyond them queue for the flusher.
const directSlots = 2

// maxCoalesce caps the commands of one pipeline.
const maxCoalesce = 256

// pubReq is one queued single-message publish.
type pubReq struct {
	ctx     context.Context // the caller's: once it ends, the command is not sent
	topic   string
	payload []byte
	n       int64
	err     error
	done    chan struct{}
}

var reqPool = sync.Pool{New: func() any { return &pubReq{done: make(chan struct{}, 1)} }}

// coalescer runs the flushers of one publisher.
type coalescer struct {
	p      *Publisher
	queue  chan *pubReq
	direct chan struct{}   // one token per caller sending its own command
	ctx    context.Context // ends when the publisher is released
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func newCoalescer(p *Publisher) *coalescer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &coalescer{p: p, queue: make(chan *pubReq, maxCoalesce), direct: make(chan struct{}, directSlots), ctx: ctx, stop: cancel}
	c.wg.Add(flushers)
	for range flushers {
		go c.flush()
	}
	return c
}

// publish sends one PUBLISH itself when fewer than directSlots callers
// are doing so; otherwise it queues it for the flusher and waits for its
// reply, or for ctx.
func (c *coalescer) publish(ctx context.Context, topic string, payload []byte) (int64, error) {
	select {
	case c.direct <- struct{}{}:
		n, err := c.p.publishCmd(ctx, c.p.client, topic, payload).Result()
		<-c.direct
		return n, err
	default:
	}
	r := reqPool.Get().(*pubReq)
	r.ctx, r.topic, r.payload = ctx, topic, payload
	select {
	case c.queue <- r:
	case <-ctx.Done():
		r.ctx, r.payload = nil, nil
		reqPool.Put(r)
		return 0, ctx.Err()
	case <-c.ctx.Done():
		return 0, bus.ErrClosed
	}
	select {
	case <-r.done:
		n, err := r.n, r.err
		*r = pubReq{done: r.done}
		reqPool.Put(r)
		return n, err
	case <-ctx.Done():
		// The flusher still owns r (it may be sent): leave it to the
		// garbage collector rather than the pool.
		return 0, ctx.Err()
	case <-c.ctx.Done():
		return 0, bus.ErrClosed
	}
}

func (c *coalescer) flush() {
	defer c.wg.Done()
	batch := make([]*pubReq, 0, maxCoalesce)
	cmds := make([]*goredis.IntCmd, 0, maxCoalesce)
	for {
		batch = batch[:0]
		select {
		case r := <-c.queue:
			batch = append(batch, r)
		case <-c.ctx.Done():
			return
		}
	more:
		for len(batch) < maxCoalesce {
			select {
			case r := <-c.queue:
				batch = append(batch, r)
			default:
				break more
			}
		}
		// A caller that gave up before its command went out is not sent.
		live := batch[:0]
		for _, r := range batch {
			if err := r.ctx.Err(); err != nil {
				r.err = err
				r.done <- struct{}{}
				continue
			}
			live = append(live, r)
		}
		switch len(live) {
		case 0:
			continue
		case 1:
			r := live[0]
			r.n, r.err = c.p.publishCmd(c.ctx, c.p.client, r.topic, r.payload).Result()
			r.done <- struct{}{}
			continue
		}
		pipe := c.p.client.Pipeline()
		cmds = cmds[:0]
		for _, r := range live {
			cmds = append(cmds, c.p.publishCmd(c.ctx, pipe, r.topic, r.payload))
		}
		_, _ = pipe.Exec(c.ctx)
		for i, r := range live {
			r.n, r.err = cmds[i].Result()
			r.done <- struct{}{}
		}
		clear(cmds)
	}
}

// close stops the flushers once the publishes in flight are answered.
func (c *coalescer) close() {
	c.stop()
	c.wg.Wait()
}
