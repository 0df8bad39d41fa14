package dispatch

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeyOrderAndLimit(t *testing.T) {
	const workers, keys, per = 4, 16, 200
	p := New(workers)
	var inflight, peak atomic.Int32
	var mu sync.Mutex
	last := map[string]int{}
	for i := 0; i < per; i++ {
		for k := 0; k < keys; k++ {
			key, seq := fmt.Sprint("k", k), i
			p.Submit(nil, key, func() {
				n := inflight.Add(1)
				defer inflight.Add(-1)
				if n > peak.Load() {
					peak.Store(n)
				}
				mu.Lock()
				defer mu.Unlock()
				if prev, ok := last[key]; ok && prev != seq-1 {
					t.Errorf("key %s: %d after %d", key, seq, prev)
				}
				last[key] = seq
			})
		}
		p.Submit(nil, "", func() {})
	}
	p.Wait()
	p.Close()
	if pk := peak.Load(); pk > workers {
		t.Fatalf("peak %d jobs at once, limit %d", pk, workers)
	}
	for k := 0; k < keys; k++ {
		if last[fmt.Sprint("k", k)] != per-1 {
			t.Fatalf("key k%d stopped at %d", k, last[fmt.Sprint("k", k)])
		}
	}
}

func TestKeylessJobsUseFreeWorkers(t *testing.T) {
	p := New(3)
	defer p.Close()
	gate := make(chan struct{})
	var started sync.WaitGroup
	started.Add(3)
	for range 3 {
		p.Submit(nil, "", func() { started.Done(); <-gate })
	}
	started.Wait() // three keyless jobs run at once on three workers
	close(gate)
	p.Wait()
}

// Messages queued behind a busy key take no worker: with 4 workers and 8
// jobs of one blocked key, the other keys' jobs still run at once. On the
// commit before this test, the waiting jobs held the workers' tokens and
// the other keys waited for the hot one.
func TestHotKeyDoesNotStarveOthers(t *testing.T) {
	const workers = 4
	p := New(workers)
	defer p.Close()
	release := make(chan struct{})
	for range 8 {
		p.Submit(nil, "hot", func() { <-release })
	}
	var others sync.WaitGroup
	for i := range 2 * workers {
		others.Add(1)
		if !p.Submit(deadline(t, 10*time.Second), fmt.Sprint("cold", i), others.Done) {
			t.Fatalf("cold job %d could not be submitted while the hot key is blocked", i)
		}
	}
	finished := make(chan struct{})
	go func() { others.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("other keys did not run while one key was blocked")
	}
	close(release)
	p.Wait()
}

// The pool holds at most Capacity jobs: Submit blocks beyond it and gives
// up when its done channel closes.
func TestSubmitBoundedAndCancellable(t *testing.T) {
	p := New(2)
	defer p.Close()
	release := make(chan struct{})
	for range Capacity(2) {
		if !p.Submit(nil, "k", func() { <-release }) {
			t.Fatal("submit within capacity failed")
		}
	}
	done := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(done) })
	if p.Submit(done, "other", func() { t.Error("job over capacity ran") }) {
		t.Fatal("Submit over capacity did not wait")
	}
	if p.WaitUntil(closedChan()) {
		t.Fatal("WaitUntil reported idle with jobs running")
	}
	close(release)
	if !p.WaitUntil(deadline(t, 10*time.Second)) {
		t.Fatal("jobs did not finish")
	}
}

// After Close, jobs still queued behind a key run in order on the
// goroutine that ran the key's job before them.
func TestCloseRunsQueuedKeyJobs(t *testing.T) {
	p := New(2)
	release := make(chan struct{})
	var got []int
	var mu sync.Mutex
	for i := range 4 {
		p.Submit(nil, "k", func() {
			if i == 0 {
				<-release
			}
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
		})
	}
	p.Close()
	close(release)
	if !p.WaitUntil(deadline(t, 10*time.Second)) {
		t.Fatal("queued jobs did not run after Close")
	}
	if fmt.Sprint(got) != "[0 1 2 3]" {
		t.Fatalf("order %v", got)
	}
}

func deadline(t *testing.T, d time.Duration) <-chan struct{} {
	c := make(chan struct{})
	tm := time.AfterFunc(d, func() { close(c) })
	t.Cleanup(func() { tm.Stop() })
	return c
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func BenchmarkSubmit(b *testing.B) {
	p := New(8)
	defer p.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Submit(nil, "key", func() {})
	}
}
