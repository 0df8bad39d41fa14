package watermill_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bodySize is the size of every message body in these benchmarks.
const bodySize = 1024

// waitLimit bounds every wait for consumption, so that a stuck run fails
// instead of hanging.
const waitLimit = 3 * time.Minute

// payload returns a fresh 1 KiB body whose first 8 bytes hold the current
// time, so that a consumer can measure publish-to-handler latency from the
// body alone, the same way on both libraries.
func payload() []byte {
	p := make([]byte, bodySize)
	binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
	return p
}

// warmupPayload is a body with a zero stamp: consumers use it to know they
// are live before the timer starts, and do not count it.
func warmupPayload() []byte { return make([]byte, bodySize) }

// stampOf reads the publish time from a body; ok is false for a warm-up body.
func stampOf(p []byte) (time.Time, bool) {
	if len(p) < 8 {
		return time.Time{}, false
	}
	ns := int64(binary.BigEndian.Uint64(p))
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

var nameSeq atomic.Int64

// uniqueName is a queue or topic name no other run uses.
func uniqueName(b *testing.B) string {
	n := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return '-'
	}, b.Name())
	return fmt.Sprintf("blwm-%s-%d-%d", n, time.Now().UnixNano()%1e9, nameSeq.Add(1))
}

func reportRate(b *testing.B, n int, d time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds(), "msgs/s")
}

// sink counts the timed messages a consumer handles and their latencies,
// and says when the warm-up message and the last timed message arrived.
type sink struct {
	want   int
	mu     sync.Mutex
	lat    []time.Duration
	warm   chan struct{}
	warmed sync.Once
	done   chan struct{}
}

func newSink(n int) *sink {
	return &sink{want: n, lat: make([]time.Duration, 0, n), warm: make(chan struct{}), done: make(chan struct{})}
}

// take records one handled body.
func (s *sink) take(body []byte) {
	t, ok := stampOf(body)
	if !ok {
		s.warmed.Do(func() { close(s.warm) })
		return
	}
	d := time.Since(t)
	s.mu.Lock()
	s.lat = append(s.lat, d)
	if len(s.lat) == s.want {
		close(s.done)
	}
	s.mu.Unlock()
}

func (s *sink) waitWarm(b *testing.B) {
	select {
	case <-s.warm:
	case <-time.After(waitLimit):
		b.Fatal("the warm-up message was not consumed in time")
	}
}

func (s *sink) waitDone(b *testing.B) {
	select {
	case <-s.done:
	case <-time.After(waitLimit):
		s.mu.Lock()
		got := len(s.lat)
		s.mu.Unlock()
		b.Fatalf("consumed %d of %d messages in %v", got, s.want, waitLimit)
	}
}

// report writes msgs/s for the elapsed time and p50/p99 latency.
func (s *sink) report(b *testing.B, d time.Duration) {
	reportRate(b, s.want, d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lat) == 0 {
		return
	}
	slices.Sort(s.lat)
	b.ReportMetric(float64(s.lat[len(s.lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(s.lat[len(s.lat)*99/100].Microseconds())/1000, "p99_ms")
}

// publishBatches calls publish with b.N messages in groups of size and
// returns the time it took.
func publishBatches(b *testing.B, size int, publish func(n int) error) time.Duration {
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += size {
		if err := publish(min(size, b.N-i)); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// publishConcurrent has workers goroutines call publish, one message each
// time, until b.N messages went out, and returns the time it took.
func publishConcurrent(b *testing.B, workers int, publish func(i int64) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if err := publish(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}
