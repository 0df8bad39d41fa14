// Package dispatch runs message handlers concurrently up to a limit while
// keeping the messages of one key in order: a job whose key already has a
// job running waits behind it and runs after it, in submission order; jobs
// of other keys, and jobs without a key, run on whichever worker is free.
package dispatch

import "sync"

// Pool is a fixed set of workers. Submit and Wait may be called from one
// goroutine at a time (the subscription's receive loop).
type Pool struct {
	tokens chan struct{}  // one per job in flight, bounding Submit
	work   chan func()    // jobs ready to run, taken by any worker
	wg     sync.WaitGroup // running workers
	jobs   sync.WaitGroup // jobs submitted and not finished

	mu      sync.Mutex
	waiting map[string][]func() // per running key, the jobs queued behind it
}

// New starts a pool of n workers (n >= 1).
func New(n int) *Pool {
	if n < 1 {
		n = 1
	}
	p := &Pool{tokens: make(chan struct{}, n), work: make(chan func(), n), waiting: map[string][]func(){}}
	p.wg.Add(n)
	for range n {
		go func() {
			defer p.wg.Done()
			for job := range p.work {
				job()
			}
		}()
	}
	return p
}

func (p *Pool) run(job func()) {
	defer func() { <-p.tokens; p.jobs.Done() }()
	job()
}

// Submit queues job, blocking while n jobs are already in flight. Jobs that
// share a non-empty key run one at a time, in the order they were
// submitted; a key never holds up the jobs of other keys beyond the limit.
func (p *Pool) Submit(key string, job func()) {
	p.tokens <- struct{}{}
	p.jobs.Add(1)
	if key == "" {
		p.work <- func() { p.run(job) }
		return
	}
	p.mu.Lock()
	if q, running := p.waiting[key]; running {
		p.waiting[key] = append(q, job)
		p.mu.Unlock()
		return
	}
	p.waiting[key] = nil
	p.mu.Unlock()
	// At most n jobs hold tokens, so the send never waits for long.
	p.work <- func() { p.runKey(key, job) }
}

// runKey runs job and then the jobs queued behind its key, in order.
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
		job, q[0] = q[0], nil
		p.waiting[key] = q[1:]
		p.mu.Unlock()
	}
}

// Wait blocks until every submitted job has finished.
func (p *Pool) Wait() { p.jobs.Wait() }

// Close waits for the submitted jobs, then stops the workers. The pool must
// not be used afterwards.
func (p *Pool) Close() {
	p.jobs.Wait()
	close(p.work)
	p.wg.Wait()
}
