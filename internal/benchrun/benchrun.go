// Package benchrun holds what the adapters' benchmarks share: latencies
// with their percentiles reported as benchmark metrics, and the CPU time
// the process has used, to report CPU per message beside throughput.
package benchrun

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Latencies collects durations from any number of goroutines.
type Latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one duration.
func (l *Latencies) Add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

// Reset forgets every recorded duration.
func (l *Latencies) Reset() { l.mu.Lock(); l.d = l.d[:0]; l.mu.Unlock() }

// Report reports the 50th and 99th percentiles in milliseconds as the
// metrics prefix+"p50-ms" and prefix+"p99-ms"; with nothing recorded it
// reports nothing.
func (l *Latencies) Report(b *testing.B, prefix string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	b.ReportMetric(float64(l.d[len(l.d)/2].Microseconds())/1000, prefix+"p50-ms")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds())/1000, prefix+"p99-ms")
}

// Side is what one side of Alternate took over all its rounds.
type Side struct {
	Wall time.Duration // elapsed
	CPU  time.Duration // the whole process's, as CPUTime counts it
}

// Alternate runs b.N messages through batch and b.N through single, in
// rounds that alternate which goes first, so that both sides share every
// drift of machine load; each call's n is its share of a round. It resets
// the timer first, stops it after, and reports batch-msgs/s,
// single-msgs/s, single/batch and each side's CPU per message
// (batch-cpu-µs/msg, single-cpu-µs/msg).
func Alternate(b *testing.B, rounds int, batch, single func(n int)) (batchSide, singleSide Side) {
	var sides [2]Side
	measure := func(s *Side, f func(int), n int) {
		c0, t0 := CPUTime(), time.Now()
		f(n)
		s.Wall += time.Since(t0)
		s.CPU += CPUTime() - c0
	}
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		if r%2 == 0 {
			measure(&sides[0], batch, n)
			measure(&sides[1], single, n)
		} else {
			measure(&sides[1], single, n)
			measure(&sides[0], batch, n)
		}
	}
	b.StopTimer()
	rate := func(s Side) float64 { return float64(b.N) / s.Wall.Seconds() }
	b.ReportMetric(rate(sides[0]), "batch-msgs/s")
	b.ReportMetric(rate(sides[1]), "single-msgs/s")
	b.ReportMetric(rate(sides[1])/rate(sides[0]), "single/batch")
	for i, name := range []string{"batch", "single"} {
		b.ReportMetric(float64(sides[i].CPU.Microseconds())/float64(b.N), name+"-cpu-µs/msg")
	}
	return sides[0], sides[1]
}
