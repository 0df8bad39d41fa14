// Package dispatch runs message handlers concurrently up to a limit while
// keeping the messages of one key in order: a job whose key already has a
// job running waits behind it and runs after it, in submission order; jobs
// of other keys, and jobs without a key, run on whichever worker is free.
//
// A job waiting behind its key takes no worker, so a hot key never leaves
// workers idle while other keys wait. What the pool holds is bounded:
// running and waiting jobs together never exceed Capacity(workers), and
// Submit blocks at that bound.
package dispatch

import "sync"

// Capacity is how many jobs a pool of n workers holds at once, running and
// waiting behind their key: n for one worker (a single worker gains nothing
// from jobs waiting), else 4n, so that up to 3n messages of busy keys can
// wait while the other keys' messages still reach free workers. Adapters
// size their broker-side prefetch by it.
func Capacity(n int) int {
	if n <= 1 {
		return 1
	}
	return 4 * n
}

// Pool is a fixed set of workers.
type Pool struct {
	slots chan struct{}  // one per job held (running, ready or waiting)
	work  chan func()    // jobs ready to run, taken by any worker
	jobs  sync.WaitGroup // jobs submitted and not finished

	mu      sync.Mutex
	closed  bool
	waiting map[string][]func() // per key with a job ready or running, the jobs queued behind it
}

// New starts a pool of n workers (n >= 1).
func New(n int) *Pool {
	n = max(n, 1)
	c := Capacity(n)
	// work never holds more than the jobs that hold slots, so sends to it
	// never block.
	p := &Pool{slots: make(chan struct{}, c), work: make(chan func(), c), waiting: map[string][]func(){}}
	for range n {
		go func() {
			for job := range p.work {
				job()
			}
		}()
	}
	return p
}

// Submit queues job and reports true, blocking while the pool holds
// Capacity jobs; it gives up and reports false, without queueing job, when
// done is closed first. Jobs that share a non-empty key run one at a time,
// in the order they were submitted. Submit is safe for concurrent use, but
// not after Close.
func (p *Pool) Submit(done <-chan struct{}, key string, job func()) bool {
	select {
	case p.slots <- struct{}{}:
	case <-done:
		return false
	}
	p.jobs.Add(1)
	if key == "" {
		p.work <- func() { p.run(job) }
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if q, busy := p.waiting[key]; busy {
		p.waiting[key] = append(q, job)
		return true
	}
	p.waiting[key] = nil
	p.work <- func() { p.runKey(key, job) }
	return true
}

func (p *Pool) run(job func()) {
	defer func() { <-p.slots; p.jobs.Done() }()
	job()
}

// runKey runs job, then hands the next job of its key back to the queue of
// ready jobs, behind what other keys have waiting. After Close it runs the
// key's remaining jobs itself, in order.
func (p *Pool) runKey(key string, job func()) {
	for {
		p.run(job)
		p.mu.Lock()
		q := p.waiting[key]
		if len(q) == 0 {
			delete(p.waiting, key)
			p.mu.Unlock()
			return
		}
		next := q[0]
		q[0] = nil
		p.waiting[key] = q[1:]
		if !p.closed {
			p.work <- func() { p.runKey(key, next) }
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		job = next
	}
}

// Wait blocks until every submitted job has finished. It must not run
// concurrently with Submit.
func (p *Pool) Wait() { p.jobs.Wait() }

// WaitUntil is Wait that gives up when done is closed first; it reports
// whether every job finished. Jobs still running go on; the pool keeps
// their slots until they return.
func (p *Pool) WaitUntil(done <-chan struct{}) bool {
	idle := make(chan struct{})
	go func() { p.jobs.Wait(); close(idle) }()
	select {
	case <-idle:
		return true
	case <-done:
		return false
	}
}

// Close lets the workers stop once they have run the jobs already queued.
// It does not wait for them: call Wait or WaitUntil first. The pool must
// not be used afterwards. Close is idempotent.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.work)
	}
}
