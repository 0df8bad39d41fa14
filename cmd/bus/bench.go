package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/busline/bus"
)

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("bench", "TOPIC",
		"Publishes -n messages of -size bytes from -publishers concurrent publishers while a\n"+
			"subscriber consumes them, then prints publish throughput and end-to-end latency.", stderr)
	c.timeout = 5 * time.Minute
	c.fs.Lookup("timeout").DefValue = "5m"
	n := c.fs.Int("n", 10000, "messages to publish")
	size := c.fs.Int("size", 1024, "body size in bytes (at least 8)")
	publishers := c.fs.Int("publishers", 16, "concurrent publishers, each publishing one message at a time")
	batch := c.fs.Int("batch", 1, "messages per Publish call")
	concurrency := c.fs.Int("concurrency", 16, "subscriber concurrency")
	group := c.fs.String("group", "", "consume in this group instead of as a broadcast subscriber")
	progress := c.fs.Duration("progress", time.Second, "progress line interval on standard error (0: none)")
	if err := c.parse(args); err != nil {
		return err
	}
	switch {
	case c.fs.NArg() != 1:
		return usagef("bench: want exactly one TOPIC (see bus bench -h)")
	case *n < 1 || *publishers < 1 || *batch < 1 || *concurrency < 1:
		return usagef("bench: -n, -publishers, -batch and -concurrency must be at least 1")
	case *size < 8:
		return usagef("bench: -size must be at least 8 (the send time travels in the body)")
	}
	topic := c.fs.Arg(0)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	sub, err := bus.OpenSubscriber(ctx, c.url)
	if err != nil {
		return err
	}
	defer sub.Close()
	pub, err := bus.OpenPublisher(ctx, c.url)
	if err != nil {
		return err
	}
	defer pub.Close()

	var start time.Time // set when publishing starts
	var received atomic.Int64
	lat := make([]time.Duration, 0, *n)
	var mu sync.Mutex
	all := make(chan struct{})
	h := func(_ context.Context, m *bus.Message) error {
		if len(m.Body) >= 8 {
			d := time.Since(start) - time.Duration(binary.BigEndian.Uint64(m.Body))
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}
		if received.Add(1) == int64(*n) {
			close(all)
		}
		return nil
	}
	ready := make(chan struct{})
	subErr := make(chan error, 1)
	opts := []bus.SubscribeOption{bus.Concurrency(*concurrency), bus.OnReady(func() { close(ready) })}
	if *group != "" {
		opts = append(opts, bus.Group(*group), bus.StartFrom(bus.StartLatest))
	}
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	go func() { subErr <- sub.Subscribe(subCtx, topic, h, opts...) }()
	select {
	case <-ready:
	case err := <-subErr:
		return err
	case <-ctx.Done():
		return fmt.Errorf("bench: subscriber not ready: %w", ctx.Err())
	}

	start = time.Now() // before any goroutine that reads it starts
	var published atomic.Int64
	stopProgress := make(chan struct{})
	if *progress > 0 {
		go func() {
			t := time.NewTicker(*progress)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					fmt.Fprintf(stderr, "bench: %6.1fs published %d/%d received %d\n",
						time.Since(start).Seconds(), published.Load(), *n, received.Load())
				}
			}
		}()
	}
	defer close(stopProgress)
	var next atomic.Int64
	errs := make(chan error, *publishers)
	var wg sync.WaitGroup
	for range *publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := next.Add(int64(*batch)) - int64(*batch)
				if first >= int64(*n) {
					return
				}
				k := min(int64(*batch), int64(*n)-first)
				msgs := make([]*bus.Message, k)
				for i := range msgs {
					body := make([]byte, *size)
					binary.BigEndian.PutUint64(body, uint64(time.Since(start)))
					msgs[i] = &bus.Message{Type: "bus.bench", Key: fmt.Sprint(first + int64(i)), Body: body}
				}
				if err := pub.Publish(ctx, topic, msgs...); err != nil {
					errs <- err
					return
				}
				published.Add(k)
			}
		}()
	}
	wg.Wait()
	pubDur := time.Since(start)
	select {
	case err := <-errs:
		return fmt.Errorf("bench: publish: %w", err)
	default:
	}
	select {
	case <-all:
	case err := <-subErr:
		return fmt.Errorf("bench: subscriber stopped: %v", err)
	case <-ctx.Done():
		return fmt.Errorf("bench: received %d of %d: %w", received.Load(), *n, ctx.Err())
	}
	total := time.Since(start)
	mu.Lock()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)*50/100], lat[min(len(lat)-1, len(lat)*99/100)]
	mu.Unlock()
	fmt.Fprintf(stdout, "url=%s topic=%s n=%d size=%d publishers=%d batch=%d concurrency=%d\n",
		bus.RedactURL(c.url), topic, *n, *size, *publishers, *batch, *concurrency)
	fmt.Fprintf(stdout, "publish: %.0f msgs/s (%v)\n", float64(*n)/pubDur.Seconds(), pubDur.Round(time.Millisecond))
	fmt.Fprintf(stdout, "end-to-end: %.0f msgs/s (%v) p50=%v p99=%v\n",
		float64(*n)/total.Seconds(), total.Round(time.Millisecond), p50.Round(time.Microsecond), p99.Round(time.Microsecond))
	return nil
}
