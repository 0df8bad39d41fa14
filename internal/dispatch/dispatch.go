// Package dispatch runs message handlers concurrently up to a limit while
// keeping the messages of one key in order: jobs with the same non-empty
// key always run on the same worker, one after another; jobs without a key
// run on whichever worker is free.
package dispatch

import "sync"

// Pool is a fixed set of workers. Submit and Wait may be called from one
// goroutine at a time (the subscription's receive loop).
type Pool struct {
	tokens chan struct{}  // one per job in flight, bounding Submit
	shared chan func()    // keyless jobs, taken by any worker
	keyed  []chan func()  // per-worker queues for keyed jobs
	wg     sync.WaitGroup // running workers
	jobs   sync.WaitGroup // jobs submitted and not finished
}

// New starts a pool of n workers (n >= 1).
func New(n int) *Pool {
	if n < 1 {
		n = 1
	}
	p := &Pool{tokens: make(chan struct{}, n), shared: make(chan func(), n), keyed: make([]chan func(), n)}
	for i := range p.keyed {
		p.keyed[i] = make(chan func(), n)
		p.wg.Add(1)
		go p.work(p.keyed[i])
	}
	return p
}

func (p *Pool) work(own chan func()) {
	defer p.wg.Done()
	for {
		select {
		case job, ok := <-own:
			if !ok {
				return
			}
			p.run(job)
		case job := <-p.shared:
			p.run(job)
		}
	}
}

func (p *Pool) run(job func()) {
	defer func() { <-p.tokens; p.jobs.Done() }()
	job()
}

// Submit queues job, blocking while n jobs are already in flight. Jobs that
// share a non-empty key run in the order they were submitted.
func (p *Pool) Submit(key string, job func()) {
	p.tokens <- struct{}{}
	p.jobs.Add(1)
	if key == "" {
		p.shared <- job
		return
	}
	p.keyed[hash(key)%uint32(len(p.keyed))] <- job
}

// Wait blocks until every submitted job has finished.
func (p *Pool) Wait() { p.jobs.Wait() }

// Close waits for the submitted jobs, then stops the workers. The pool must
// not be used afterwards.
func (p *Pool) Close() {
	p.jobs.Wait()
	for _, c := range p.keyed {
		close(c)
	}
	p.wg.Wait()
}

// hash is 32-bit FNV-1a, inline so that it does not allocate.
func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
