package dispatch

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
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
			p.Submit(key, func() {
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
		p.Submit("", func() {})
	}
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
		p.Submit("", func() { started.Done(); <-gate })
	}
	started.Wait() // three keyless jobs run at once on three workers
	close(gate)
	p.Wait()
}

func BenchmarkSubmit(b *testing.B) {
	p := New(8)
	defer p.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Submit("key", func() {})
	}
}
