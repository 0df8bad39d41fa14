package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/busline/bus"
)

const benchSummary = "Publishes -n messages of -size bytes from -publishers concurrent publishers while a\n" +
	"subscriber in the same process consumes them, then prints publish throughput,\n" +
	"end-to-end throughput and latency, and allocations per message.\n\n" +
	"With -raw, the same workload also runs through the URL's own client library\n" +
	"(amqp091-go, kafka-go, go-redis) in the same process, on the topic TOPIC-raw of\n" +
	"the same shape (on Kafka it is created with TOPIC's partitions and replication),\n" +
	"alternating with busline for -rounds rounds, and a third row gives the ratio\n" +
	"busline/raw of each column\n" +
	"(medians over the rounds). Allocations count the whole process: publisher,\n" +
	"subscriber and, for an in-process broker, the broker.\n\n" +
	"The raw clients send the bare body, without busline's envelope. amqp091-go\n" +
	"publishes persistent, mandatory messages on one confirm-mode channel to the\n" +
	"exchange (or work queue) the amqp adapter declares, and acks after each handler\n" +
	"with the adapter's prefetch; it deletes what it declared when done.\n" +
	"kafka-go writes through a Writer with the URL's acks and batch_size (batch\n" +
	"timeout 100µs unless batch_timeout is set) and reads every partition from its\n" +
	"end, or with -group joins the group and commits what it read.\n" +
	"go-redis PUBLISHes (a batch in one pipeline) and SUBSCRIBEs."

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("bench", "TOPIC", benchSummary, stderr)
	c.timeout = 5 * time.Minute
	c.fs.Lookup("timeout").DefValue = "5m"
	w := &workload{stderr: stderr}
	c.fs.IntVar(&w.n, "n", 10000, "messages to publish in each run")
	c.fs.IntVar(&w.size, "size", 1024, "body size in bytes (at least 16)")
	c.fs.IntVar(&w.publishers, "publishers", 16, "concurrent publishers, each publishing -batch messages per call")
	c.fs.IntVar(&w.batch, "batch", 1, "messages per Publish call")
	c.fs.IntVar(&w.concurrency, "concurrency", 16, "subscriber concurrency")
	c.fs.StringVar(&w.group, "group", "", "consume in this group instead of as a broadcast subscriber")
	c.fs.DurationVar(&w.progress, "progress", time.Second, "progress line interval on standard error (0: none)")
	raw := c.fs.Bool("raw", false, "also run the workload through the URL's raw client and print the ratio busline/raw")
	rounds := c.fs.Int("rounds", 1, "runs of each side, alternating; the rows are medians")
	if err := c.parse(args); err != nil {
		return err
	}
	switch {
	case c.fs.NArg() != 1:
		return usagef("bench: want exactly one TOPIC (see bus bench -h)")
	case w.n < 1 || w.publishers < 1 || w.batch < 1 || w.concurrency < 1 || *rounds < 1:
		return usagef("bench: -n, -publishers, -batch, -concurrency and -rounds must be at least 1")
	case w.size < 16:
		return usagef("bench: -size must be at least 16 (the send time and a run id travel in the body)")
	}
	w.topic = c.fs.Arg(0)
	sides := []benchSide{{name: "busline", open: openBusline, topic: w.topic}}
	if *raw {
		rs, err := rawSide(c.url)
		if err != nil {
			return err
		}
		rs.topic = w.topic + rawTopicSuffix
		sides = append(sides, rs)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	results := make([][]benchResult, len(sides))
	for r := range *rounds {
		for i := range sides {
			// Alternate which side goes first, so that a drift in the
			// machine's load does not always favour the same one.
			s := i
			if r%2 == 1 {
				s = len(sides) - 1 - i
			}
			res, err := runSide(ctx, c.url, w, sides[s])
			if err != nil {
				return err
			}
			results[s] = append(results[s], res)
		}
	}

	topics := w.topic
	if len(sides) == 2 {
		topics += "," + sides[1].topic
	}
	fmt.Fprintf(stdout, "url=%s topic=%s n=%d size=%d publishers=%d batch=%d concurrency=%d group=%q rounds=%d\n",
		bus.RedactURL(c.url), topics, w.n, w.size, w.publishers, w.batch, w.concurrency, w.group, *rounds)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tpublish msgs/s\tend-to-end msgs/s\tp50\tp99\tallocs/msg\tB/msg\t")
	meds := make([]benchResult, len(sides))
	for i, s := range sides {
		meds[i] = median(results[i])
		m := meds[i]
		if m.stale > 0 {
			fmt.Fprintf(stderr, "bench: %s ignored %d messages left on the topic by earlier runs\n", s.name, m.stale)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%v\t%v\t%.1f\t%.0f\t\n", s.name, m.publishRate, m.e2eRate,
			m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond), m.allocs, m.bytes)
	}
	if len(sides) == 2 {
		b, r := meds[0], meds[1]
		fmt.Fprintf(tw, "busline/raw\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			ratio(b.publishRate, r.publishRate), ratio(b.e2eRate, r.e2eRate),
			ratio(float64(b.p50), float64(r.p50)), ratio(float64(b.p99), float64(r.p99)),
			ratio(b.allocs, r.allocs), ratio(b.bytes, r.bytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(sides) == 2 {
		fmt.Fprintln(stdout, "ratio: above 1 is busline faster for msgs/s, slower or costlier for latency and allocations")
	}
	return nil
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}

// workload is what one run does; both sides of a comparison run the same.
type workload struct {
	topic, group                            string
	n, size, publishers, batch, concurrency int
	progress                                time.Duration
	stderr                                  io.Writer
}

// rawTopicSuffix makes the raw client's topic: the raw side publishes to
// a topic of its own, so that neither side's durable group queue or
// committed offsets collect the other side's messages between rounds.
const rawTopicSuffix = "-raw"

// benchSide names a client the workload runs through, opens it, and names
// the topic it uses.
type benchSide struct {
	name  string
	open  func(ctx context.Context, rawURL string) (benchClient, error)
	topic string
}

// benchClient is one client's half of a run: a subscription and a
// publisher on the same broker.
type benchClient interface {
	// subscribe starts consuming w.topic (in w.group when set) with up to
	// w.concurrency handlers at a time, calling h with each message's body
	// and settling the message when h returns. It returns once messages
	// published from then on will be delivered; the channel receives the
	// error, or nil, that ends the subscription. The subscription lasts
	// until ctx ends.
	subscribe(ctx context.Context, w *workload, h func(body []byte)) (<-chan error, error)
	// publish publishes bodies as one batch (the keys are the decimal
	// numbers from first) and returns once the broker has taken them all.
	publish(ctx context.Context, topic string, first int, bodies [][]byte) error
	// close releases the client, ending any subscription first.
	close() error
}

// benchResult is what one run measured.
type benchResult struct {
	publishRate, e2eRate float64 // messages a second
	p50, p99             time.Duration
	allocs, bytes        float64 // per message, whole process
	stale                int64   // messages of earlier runs, not counted
}

// median returns, per column, the median of rs (the lower middle one for
// an even count).
func median(rs []benchResult) benchResult {
	pick := func(f func(benchResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[(len(v)-1)/2]
	}
	return benchResult{
		publishRate: pick(func(r benchResult) float64 { return r.publishRate }),
		e2eRate:     pick(func(r benchResult) float64 { return r.e2eRate }),
		p50:         time.Duration(pick(func(r benchResult) float64 { return float64(r.p50) })),
		p99:         time.Duration(pick(func(r benchResult) float64 { return float64(r.p99) })),
		allocs:      pick(func(r benchResult) float64 { return r.allocs }),
		bytes:       pick(func(r benchResult) float64 { return r.bytes }),
		stale:       int64(pick(func(r benchResult) float64 { return float64(r.stale) })),
	}
}

// runSide runs w once through side, on side.topic. Every wait ends when
// ctx does.
func runSide(ctx context.Context, rawURL string, w0 *workload, side benchSide) (benchResult, error) {
	w := *w0
	w.topic = side.topic
	cl, err := side.open(ctx, rawURL)
	if err != nil {
		return benchResult{}, err
	}
	defer cl.close()

	// The body carries its send time as nanoseconds since base, then the
	// run's id: a message of another run (left in a durable queue, or
	// after a group's committed offset) is settled but not counted.
	base := time.Now()
	run := rand.Uint64()
	var received, stale atomic.Int64
	lat := make([]time.Duration, 0, w.n)
	var mu sync.Mutex
	all := make(chan struct{})
	h := func(body []byte) {
		if len(body) < 16 || binary.BigEndian.Uint64(body[8:]) != run {
			stale.Add(1)
			return
		}
		d := time.Since(base) - time.Duration(binary.BigEndian.Uint64(body))
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		if received.Add(1) == int64(w.n) {
			close(all)
		}
	}
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	subErr, err := cl.subscribe(subCtx, &w, h)
	if err != nil {
		if ctx.Err() != nil {
			return benchResult{}, fmt.Errorf("bench: %s subscriber not ready: %w", side.name, ctx.Err())
		}
		return benchResult{}, err
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	var published atomic.Int64
	stopProgress := make(chan struct{})
	if w.progress > 0 {
		go func() {
			t := time.NewTicker(w.progress)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					fmt.Fprintf(w.stderr, "bench: %s %6.1fs published %d/%d received %d\n",
						side.name, time.Since(start).Seconds(), published.Load(), w.n, received.Load())
				}
			}
		}()
	}
	defer close(stopProgress)
	var next atomic.Int64
	errs := make(chan error, w.publishers)
	var wg sync.WaitGroup
	for range w.publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := next.Add(int64(w.batch)) - int64(w.batch)
				if first >= int64(w.n) {
					return
				}
				k := min(int64(w.batch), int64(w.n)-first)
				bodies := make([][]byte, k)
				for i := range bodies {
					bodies[i] = make([]byte, w.size)
					binary.BigEndian.PutUint64(bodies[i], uint64(time.Since(base)))
					binary.BigEndian.PutUint64(bodies[i][8:], run)
				}
				if err := cl.publish(ctx, w.topic, int(first), bodies); err != nil {
					errs <- err
					return
				}
				published.Add(k)
			}
		}()
	}
	wg.Wait() // each publish call is bound by ctx
	pubDur := time.Since(start)
	select {
	case err := <-errs:
		return benchResult{}, fmt.Errorf("bench: %s publish: %w", side.name, err)
	default:
	}
	select {
	case <-all:
	case err := <-subErr:
		return benchResult{}, fmt.Errorf("bench: %s subscriber stopped after %d of %d messages: %v", side.name, received.Load(), w.n, err)
	case <-ctx.Done():
		return benchResult{}, fmt.Errorf("bench: %s received %d of %d: %w", side.name, received.Load(), w.n, ctx.Err())
	}
	total := time.Since(start)
	runtime.ReadMemStats(&after)
	mu.Lock()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)*50/100], lat[min(len(lat)-1, len(lat)*99/100)]
	mu.Unlock()
	return benchResult{
		publishRate: float64(w.n) / pubDur.Seconds(),
		e2eRate:     float64(w.n) / total.Seconds(),
		p50:         p50,
		p99:         p99,
		allocs:      float64(after.Mallocs-before.Mallocs) / float64(w.n),
		bytes:       float64(after.TotalAlloc-before.TotalAlloc) / float64(w.n),
		stale:       stale.Load(),
	}, nil
}

// rawSide returns the raw client of rawURL's scheme.
func rawSide(rawURL string) (benchSide, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return benchSide{}, fmt.Errorf("%w: cannot parse URL %q", bus.ErrInvalid, bus.RedactURL(rawURL))
	}
	switch u.Scheme {
	case "amqp", "amqps":
		return benchSide{name: "raw amqp091-go", open: openRawAMQP}, nil
	case "kafka":
		return benchSide{name: "raw kafka-go", open: openRawKafka}, nil
	case "redis":
		return benchSide{name: "raw go-redis", open: openRawRedis}, nil
	case "mem":
		return benchSide{}, usagef("bench: -raw: mem:// is busline's own in-process broker; it has no raw client to compare with")
	}
	return benchSide{}, usagef("bench: -raw: no raw client for scheme %q (want amqp, kafka or redis)", u.Scheme)
}

// buslineClient runs the workload through busline's Publisher and
// Subscriber opened from the URL.
type buslineClient struct {
	pub bus.Publisher
	sub bus.Subscriber
}

func openBusline(ctx context.Context, rawURL string) (benchClient, error) {
	sub, err := bus.OpenSubscriber(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	pub, err := bus.OpenPublisher(ctx, rawURL)
	if err != nil {
		sub.Close()
		return nil, err
	}
	return &buslineClient{pub: pub, sub: sub}, nil
}

func (c *buslineClient) subscribe(ctx context.Context, w *workload, h func([]byte)) (<-chan error, error) {
	ready := make(chan struct{})
	errc := make(chan error, 1)
	opts := []bus.SubscribeOption{bus.Concurrency(w.concurrency), bus.OnReady(func() { close(ready) })}
	if w.group != "" {
		opts = append(opts, bus.Group(w.group), bus.StartFrom(bus.StartLatest))
	}
	go func() {
		errc <- c.sub.Subscribe(ctx, w.topic, func(_ context.Context, m *bus.Message) error {
			h(m.Body)
			return nil
		}, opts...)
	}()
	select {
	case <-ready:
		return errc, nil
	case err := <-errc:
		if err == nil {
			err = errors.New("subscription ended before it was ready")
		}
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *buslineClient) publish(ctx context.Context, topic string, first int, bodies [][]byte) error {
	msgs := make([]*bus.Message, len(bodies))
	for i, b := range bodies {
		msgs[i] = &bus.Message{Type: "bus.bench", Key: strconv.Itoa(first + i), Body: b}
	}
	return c.pub.Publish(ctx, topic, msgs...)
}

func (c *buslineClient) close() error {
	return errors.Join(c.sub.Close(), c.pub.Close())
}
