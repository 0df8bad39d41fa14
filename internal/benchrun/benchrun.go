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
