package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/ce"
	"github.com/busline/bus/internal/health"
	"github.com/busline/bus/internal/lifecycle"
	"github.com/busline/bus/internal/pipeline"
	"github.com/busline/bus/internal/subrun"
)

// Subscriber consumes Kafka topics, as a member of a consumer group or as
// a broadcast reader of every partition. It is safe for concurrent use;
// every Subscribe call is a subscription of its own (its own group member,
// readers and worker pool).
type Subscriber struct {
	lagMu sync.Mutex
	lags  map[*partition]lagSource // the partitions being read, for Lag

	c      *conn
	state  *lifecycle.State
	dlq    *Publisher // publishes dead letters
	health health.Set // one tracker per running subscription

	// parked counts the times a partition's reading paused at
	// MaxUncommitted (the tests watch it).
	parked atomic.Int64
}

var (
	_ bus.Subscriber         = (*Subscriber)(nil)
	_ bus.Shutdowner         = (*Subscriber)(nil)
	_ bus.CapabilityReporter = (*Subscriber)(nil)
	_ bus.Aser               = (*Subscriber)(nil)
)

// NewSubscriber connects to the cluster cfg names and returns a
// Subscriber. It fails when the brokers cannot be reached
// (bus.ErrUnreachable) or reject the credentials (bus.ErrPermission)
// before ctx ends.
func NewSubscriber(ctx context.Context, cfg Config) (*Subscriber, error) {
	c, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.ping(ctx); err != nil {
		return nil, err
	}
	return &Subscriber{c: c, state: lifecycle.New(), dlq: newPublisher(c)}, nil
}

// Subscribe runs h for the messages of topic until ctx ends or the
// Subscriber is closed; see bus.Subscriber and the package doc's Delivery
// Semantics. The topic and its dead letter topic must exist (or
// create_topics be on): otherwise Subscribe fails at once with an error
// wrapping bus.ErrNotFound.
//
// With bus.Group it joins that consumer group and calls OnReady once it
// holds its first assignment. Without it, it reads every partition from
// the end, joining no group, and calls OnReady once its start offsets are
// fixed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string, h bus.Handler, opts ...bus.SubscribeOption) error {
	run, err := subrun.Begin(ctx, subrun.Params{Pkg: "kafka", Life: s.state, Logger: s.c.cfg.Logger, DeadLetter: s.deadLetter,
		Grace: s.c.cfg.HandlerGrace, Health: &s.health}, topic, h, opts)
	if err != nil {
		return err
	}
	return run.End(s.run(run))
}

// run is Subscribe once its arguments are checked.
func (s *Subscriber) run(run *subrun.Sub) error {
	topic, sc, wctx := run.Topic, run.Config, run.Work
	parts, err := s.c.ensureTopic(wctx, s.dlq.t, topic)
	if err != nil {
		return fmt.Errorf("kafka: subscribe to %q: %w", topic, err)
	}
	if _, err := s.c.ensureTopic(wctx, s.dlq.t, sc.DeadLetter); err != nil {
		// Not fatal: a dead letter topic is only needed once a message
		// fails for good, and such a message waits (its partition stalls,
		// nothing is skipped) until the topic exists.
		sc.Logger.Warn("kafka: dead letter topic not usable; failed messages will wait for it",
			"topic", topic, "dead_letter", sc.DeadLetter, "error", err)
	}
	sub := &subscription{
		s:     s,
		run:   run,
		topic: topic,
		cfg:   sc,
		log:   sc.Logger.With("topic", topic, "group", sc.Group),
	}
	if sc.Group == "" {
		return sub.broadcast(wctx, parts)
	}
	return sub.group(wctx)
}

// subscription is one Subscribe call.
type subscription struct {
	s     *Subscriber
	run   *subrun.Sub
	topic string
	cfg   driver.SubscribeConfig
	log   *slog.Logger

	// The highest offset of each partition handed to the handler by this
	// subscription, across generations and re-reads: a message at or
	// below it is a redelivery.
	deliveredMu sync.Mutex
	delivered   map[int]*atomic.Int64
}

// highWater returns the delivered high-water mark of partition id.
func (sub *subscription) highWater(id int) *atomic.Int64 {
	sub.deliveredMu.Lock()
	defer sub.deliveredMu.Unlock()
	if sub.delivered == nil {
		sub.delivered = map[int]*atomic.Int64{}
	}
	hw := sub.delivered[id]
	if hw == nil {
		hw = new(atomic.Int64)
		hw.Store(-1)
		sub.delivered[id] = hw
	}
	return hw
}

func (sub *subscription) ready() { sub.run.Ready() }

// partitionWatch is how often a broadcast subscription looks for
// partitions added to its topic; the group subscriptions' interval too.
const partitionWatch = 5 * time.Second

// broadcast reads every partition from its current end, without a group.
// Partitions added to the topic while it runs are read from their first
// offset once it sees them (within partitionWatch), so nothing published
// after OnReady is missed.
func (sub *subscription) broadcast(ctx context.Context, parts []int) error {
	offs, err := sub.s.c.lastOffsets(ctx, sub.topic, parts)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("kafka: subscribe to %q: %w", sub.topic, err)
	}
	// One session for every partition: its handlers are let go of when
	// the subscription ends.
	sess := sub.run.NewSession()
	var readers sync.WaitGroup
	defer func() {
		// The readers return once ctx ends, without waiting for handlers;
		// the handlers get until the session's context ends (the grace
		// after Subscribe's ctx, or the Shutdown deadline).
		readers.Wait()
		sess.Wait(nil)
		sess.End()
	}()
	reading := map[int]bool{}
	read := func(p int, start int64) {
		reading[p] = true
		pt := newPartition(p, start, false, false, sub.s.c.cfg.MaxUncommitted)
		readers.Add(1)
		go func() {
			defer readers.Done()
			sub.consume(ctx, pt, sess, nil)
		}()
	}
	for _, p := range parts {
		read(p, offs[p])
	}
	sub.ready()
	t := time.NewTicker(partitionWatch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now, err := sub.s.c.partitions(ctx, sub.topic)
		if err != nil {
			if ctx.Err() == nil {
				sub.log.Debug("kafka: checking for new partitions failed", "error", err)
			}
			continue
		}
		for _, p := range now {
			if !reading[p] {
				sub.log.Info("kafka: reading a partition added to the topic", "partition", p)
				read(p, kafkago.FirstOffset)
			}
		}
	}
}

// group runs the subscription as a consumer group member: one generation
// after another until ctx ends, then leaves the group.
func (sub *subscription) group(ctx context.Context) error {
	c := sub.s.c
	start := kafkago.FirstOffset
	if sub.cfg.Start == bus.StartLatest {
		start = kafkago.LastOffset
	}
	cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                     sub.cfg.Group,
		Brokers:                c.cfg.Brokers,
		Dialer:                 c.dialer(),
		Topics:                 []string{sub.topic},
		HeartbeatInterval:      c.cfg.HeartbeatInterval,
		SessionTimeout:         c.cfg.SessionTimeout,
		RebalanceTimeout:       c.cfg.RebalanceTimeout,
		JoinGroupBackoff:       time.Second,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: partitionWatch,
		StartOffset:            start,
		Timeout:                c.cfg.DialTimeout,
		Logger:                 kafkaLogger(sub.log, slog.LevelDebug),
		ErrorLogger:            kafkaLogger(sub.log, slog.LevelDebug),
	})
	if err != nil {
		return fmt.Errorf("kafka: subscribe to %q: %w: group: %w", sub.topic, bus.ErrInvalid, err)
	}
	defer sub.leave(cg)
	ready := false
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafkago.ErrGroupClosed) {
				return nil
			}
			if s := sentinel(err); !ready && (errors.Is(s, bus.ErrPermission) || errors.Is(s, bus.ErrInvalid)) {
				return wrapErr(fmt.Sprintf("subscribe to %q: join group %q", sub.topic, sub.cfg.Group), err)
			}
			sub.run.Reconnecting(err)
			sub.log.Warn("kafka: joining the group failed; retrying", "error", err)
			continue
		}
		sub.log.Debug("kafka: joined group", "generation", gen.ID, "member", gen.MemberID, "assignments", gen.Assignments[sub.topic])
		if err := sub.runGeneration(ctx, gen); err != nil {
			sub.run.Reconnecting(err)
			sub.log.Warn("kafka: generation setup failed", "generation", gen.ID, "error", err)
			continue
		}
		ready = true
		sub.ready()
		sub.run.Resumed()
	}
}

// leaveWait bounds leaving the group once the handlers' time is over:
// kafka-go's Close also waits for a JoinGroup request in flight, which the
// coordinator may hold for up to rebalance_timeout.
const leaveWait = 2 * time.Second

// leave closes cg: it ends the running generation (its partitions drain,
// for a bounded time, and commit) and then leaves the group. It waits for
// that until the handlers' context ends (the grace after Subscribe's ctx
// ended, or the Shutdown deadline) and leaveWait more; then it lets the
// rest finish on its own, within rebalance_timeout.
func (sub *subscription) leave(cg *kafkago.ConsumerGroup) {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		if err := cg.Close(); err != nil {
			sub.log.Warn("kafka: leaving the group failed", "error", err)
		}
	}()
	select {
	case <-closed:
		return
	case <-sub.run.Handlers.Done():
	}
	t := time.NewTimer(leaveWait)
	defer t.Stop()
	select {
	case <-closed:
	case <-t.C:
		sub.log.Warn("kafka: still leaving the group; not waiting for it", "waited", leaveWait)
	}
}

// runGeneration starts the partition readers and the committer of one
// generation. They run until the generation ends; kafka-go waits for them
// before joining the next one, so a partition's last commit of this
// generation happens before any other member can read it. The
// generation's handlers run in a session of their own: when the
// generation ends they get HandlerGrace to finish, then their contexts are
// cancelled and the member rejoins without them.
func (sub *subscription) runGeneration(ctx context.Context, gen *kafkago.Generation) error {
	assigned := gen.Assignments[sub.topic]
	var latest []int
	for _, pa := range assigned {
		if pa.Offset == kafkago.LastOffset {
			latest = append(latest, pa.ID)
		}
	}
	resolved := map[int]int64{}
	if len(latest) > 0 {
		// A new group starting at the end: fix the end now and commit it,
		// so that messages published after OnReady are read even if this
		// member dies before it handles any.
		offs, err := sub.s.c.lastOffsets(ctx, sub.topic, latest)
		if err != nil {
			gen.Start(func(context.Context) {}) // end the generation; rejoin
			return err
		}
		resolved = offs
		if err := gen.CommitOffsets(map[string]map[int]int64{sub.topic: offs}); err != nil {
			// Not ready without it: OnReady promises that what is
			// published from then on is read, even after a crash.
			gen.Start(func(context.Context) {}) // end the generation; rejoin
			return fmt.Errorf("commit the start offsets: %w", err)
		}
	}
	g := &generation{sub: sub, gen: gen, sess: sub.run.NewSession(), kick: make(chan struct{}, 1)}
	var readers sync.WaitGroup
	for _, pa := range assigned {
		off := pa.Offset
		if r, ok := resolved[pa.ID]; ok {
			off = r
		}
		pt := newPartition(pa.ID, off, off >= 0, true, sub.s.c.cfg.MaxUncommitted)
		g.parts = append(g.parts, pt)
		readers.Add(1)
		gen.Start(func(gctx context.Context) {
			defer readers.Done()
			mctx, done := mergeDone(gctx, ctx)
			defer done()
			sub.consume(mctx, pt, g.sess, g.signal)
		})
	}
	gen.Start(func(gctx context.Context) {
		mctx, done := mergeDone(gctx, ctx)
		defer done()
		g.run(mctx, &readers)
	})
	return nil
}

// mergeDone returns a context that ends when a or b ends, with a's values,
// and a function to call when done with it, which releases what ties it
// to b (b outlives many generations).
func mergeDone(a, b context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

// generation is what one consumer group generation holds: its
// partitions, the session its handlers run in, and its committer. Only the
// committer's goroutine commits, and only until the generation ends.
type generation struct {
	sub   *subscription
	gen   *kafkago.Generation
	sess  *subrun.Session
	parts []*partition
	kick  chan struct{}
}

func (g *generation) signal() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// run commits the generation's finished offsets soon after handlers finish
// (at most CommitInterval apart) until ctx ends, then ends the generation.
func (g *generation) run(ctx context.Context, readers *sync.WaitGroup) {
	interval := g.sub.s.c.cfg.CommitInterval
	for {
		select {
		case <-ctx.Done():
			g.end(readers)
			return
		case <-g.kick:
		}
		if !g.commit() {
			g.signal() // try again after the interval
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// end waits for the readers (they stop at once), then for the handlers:
// on a rebalance for HandlerGrace, when the subscription stops until the
// session's context ends (the grace after Subscribe's ctx ended, or the
// Shutdown deadline). It then cancels the handlers still running, commits
// what finished and returns, which lets kafka-go rejoin or leave the
// group. The messages of handlers still running are left uncommitted, for
// the partition's next owner; whatever they do later is never committed.
func (g *generation) end(readers *sync.WaitGroup) {
	readers.Wait()
	var grace chan struct{} // nil: no grace of its own
	if g.sub.run.Work.Err() == nil {
		grace = make(chan struct{})
		t := time.AfterFunc(g.sub.s.c.cfg.HandlerGrace, func() { close(grace) })
		defer t.Stop()
	}
	if !g.sess.Wait(grace) {
		g.sub.log.Warn("kafka: handlers still running when the generation ended; cancelled, their messages left for the next owner",
			"generation", g.gen.ID)
	}
	g.sess.End()
	g.commit()
}

// commit commits the partitions' finished offsets; it reports false when
// the commit failed.
func (g *generation) commit() bool {
	offs := map[int]int64{}
	for _, pt := range g.parts {
		if pos, ok := pt.toCommit(); ok {
			offs[pt.id] = pos
		}
	}
	if len(offs) == 0 {
		return true
	}
	if err := g.gen.CommitOffsets(map[string]map[int]int64{g.sub.topic: offs}); err != nil {
		// Left uncommitted: tried again after CommitInterval while the
		// generation lasts; after it, the messages are handled again by
		// whoever reads the partition next (at-least-once).
		g.sub.log.Warn("kafka: commit failed", "generation", g.gen.ID, "offsets", offs, "error", err)
		return false
	}
	for _, pt := range g.parts {
		if pos, ok := offs[pt.id]; ok {
			pt.committed(pos)
		}
	}
	return true
}

// consume reads one partition until ctx ends; it does not wait for the
// handlers of the messages it read (the generation's or broadcast's end
// does, for a bounded time). When a message is abandoned (its dead letter
// publish failed), it waits for the partition's handlers and reads again
// from the first unfinished offset, so that nothing is skipped.
func (sub *subscription) consume(ctx context.Context, pt *partition, sess *subrun.Session, signal func()) {
	from := pt.start
	for attempt := 0; ; attempt++ {
		sub.read(ctx, pt, from, sess, signal)
		if ctx.Err() != nil {
			return
		}
		if !waitUntil(&pt.inflight, ctx.Done()) {
			return
		}
		next := pt.restart()
		if next > from {
			attempt = 0 // progress since the last stall: back off from the start
		}
		from = next
		sub.log.Warn("kafka: partition stalled on an unsettled message; reading it again", "partition", pt.id, "offset", from)
		t := time.NewTimer(min(time.Duration(attempt+1)*time.Second, 30*time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// read reads pt from offset from and hands its messages to sess's pool
// until ctx ends or a message is abandoned. It pauses while MaxUncommitted
// messages of pt are read and not committed.
func (sub *subscription) read(ctx context.Context, pt *partition, from int64, sess *subrun.Session, signal func()) {
	c := sub.s.c
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:        c.cfg.Brokers,
		Topic:          sub.topic,
		Partition:      pt.id,
		Dialer:         c.dialer(),
		QueueCapacity:  min(c.cfg.MaxUncommitted, 100), // fetched ahead, not yet read
		MinBytes:       1,
		MaxBytes:       c.cfg.FetchMaxBytes,
		MaxWait:        c.cfg.MaxWait,
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: time.Second,
		Logger:         kafkaLogger(sub.log, slog.LevelDebug),
		ErrorLogger:    kafkaLogger(sub.log, slog.LevelDebug),
	})
	defer r.Close()
	defer sub.s.trackLag(sub, pt, r)()
	if err := r.SetOffset(from); err != nil {
		sub.log.Error("kafka: cannot set the read offset", "partition", pt.id, "offset", from, "error", err)
		return
	}
	runner := *sub.run.Runner
	runner.Stop = sctx.Done()
	hw := sub.highWater(pt.id)
	hctx := sess.Ctx
	parked := func() { sub.s.parked.Add(1) }
	// Set once a message is abandoned: the messages read after it are left
	// unhandled too (they are read again after it), so that no later
	// message of its key is handled before it.
	var stalled atomic.Bool
	for {
		if !pt.waitRoom(sctx.Done(), parked) {
			return
		}
		km, err := r.FetchMessage(sctx)
		if err != nil {
			if sctx.Err() != nil {
				return
			}
			sub.log.Warn("kafka: fetch failed", "partition", pt.id, "error", err)
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-sctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		m, derr := decode(sub.topic, km)
		m.Delivery.Redelivered = km.Offset <= hw.Load()
		e := pt.add(km.Offset)
		pt.inflight.Add(1)
		job := func() {
			defer pt.inflight.Done()
			if stalled.Load() || hctx.Err() != nil {
				// Read after an abandoned message, or queued when the
				// generation ended: not handed to the handler, and so not
				// marked delivered; it is read again.
				return
			}
			for off := hw.Load(); off < km.Offset && !hw.CompareAndSwap(off, km.Offset); off = hw.Load() {
			}
			var out pipeline.Outcome
			if derr != nil {
				out = runner.Poison(hctx, m, derr)
			} else {
				out = runner.Handle(hctx, m)
			}
			if out == pipeline.Ack {
				pt.finish(e)
				if signal != nil {
					signal()
				}
				return
			}
			stalled.Store(true)
			cancel() // leave the partition stuck here; consume reads it again
		}
		if !sess.Pool.Submit(sctx.Done(), string(km.Key), job) {
			// Not handled: left for the next read of the partition.
			pt.inflight.Done()
			return
		}
	}
}

// waitUntil waits for wg until done is closed; it reports whether wg's
// count reached zero.
func waitUntil(wg *sync.WaitGroup, done <-chan struct{}) bool {
	idle := make(chan struct{})
	go func() { wg.Wait(); close(idle) }()
	select {
	case <-idle:
		return true
	case <-done:
		return false
	}
}

// decode builds the bus message of a record: CloudEvents binary headers
// when it has them, the plain record otherwise.
func decode(topic string, km kafkago.Message) (*bus.Message, error) {
	m := &bus.Message{Body: km.Value, Delivery: bus.Delivery{Topic: topic, Native: km}}
	d := ce.NewBinaryDecoder(ce.KafkaPrefix, m)
	// A record without an ID of its own is named by its position, so that
	// every delivery of it carries the same ID.
	d.FallbackID = topic + "/" + strconv.Itoa(km.Partition) + "/" + strconv.FormatInt(km.Offset, 10)
	for _, h := range km.Headers {
		d.Header(h.Key, string(h.Value))
	}
	err := d.Finish()
	if km.Key != nil {
		m.Key = string(km.Key)
	}
	if m.Time.IsZero() {
		m.Time = km.Time
	}
	if err != nil {
		return m, fmt.Errorf("kafka: %s partition %d offset %d: %w", topic, km.Partition, km.Offset, err)
	}
	return m, nil
}

func (s *Subscriber) deadLetter(ctx context.Context, topic string, m *bus.Message) error {
	return s.dlq.publish(ctx, topic, []*bus.Message{m})
}

// Capabilities reports what the Kafka adapter guarantees.
func (s *Subscriber) Capabilities() bus.Capabilities { return capabilities }

// As sets target to the subscriber's *kafkago.Dialer (a copy; changing it
// has no effect) or to the *kafkago.Client that publishes dead letters.
func (s *Subscriber) As(target any) bool {
	return driver.AsValue(s.c.dialer(), target) || driver.AsValue(s.dlq.prod.client, target)
}

// lagSource is one partition being read, for Lag.
type lagSource struct {
	sub *subscription
	r   *kafkago.Reader
}

// trackLag registers pt, read by r, for Lag; call the result to forget it.
func (s *Subscriber) trackLag(sub *subscription, pt *partition, r *kafkago.Reader) func() {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	if s.lags == nil {
		s.lags = map[*partition]lagSource{}
	}
	s.lags[pt] = lagSource{sub: sub, r: r}
	return func() {
		s.lagMu.Lock()
		defer s.lagMu.Unlock()
		delete(s.lags, pt)
	}
}

// Lag reports, for each partition a running subscription reads, how many
// messages the partition held past the last one the subscription finished
// handling, as of the last fetch (kafka-go knows a partition's end only
// from its fetches: while reading is paused at max_uncommitted, the end is
// the one seen last). A partition not fetched from yet is left out.
func (s *Subscriber) Lag() []bus.PartitionLag {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	out := make([]bus.PartitionLag, 0, len(s.lags))
	for pt, src := range s.lags {
		lag := src.r.Lag()
		fin := pt.finished()
		if lag < 0 || fin < 0 {
			continue
		}
		end := src.r.Offset() + lag // the partition's end at the last fetch
		out = append(out, bus.PartitionLag{Topic: src.sub.topic, Group: src.sub.cfg.Group, Partition: pt.id, Lag: max(end-fin, 0)})
	}
	return out
}

// Health reports the least healthy of the running subscriptions (see
// bus.Health). A group member is reconnecting from a failed attempt to
// join its group (the coordinator gone or refusing) until it holds a
// generation again. Lost connections inside a generation are retried by
// kafka-go's reader and do not show here.
func (s *Subscriber) Health() bus.Health { return s.health.Health() }

// Close stops every subscription: no new messages are read, running
// handlers finish (up to bus.DefaultCloseTimeout), their offsets are
// committed and each subscription leaves its group. It is idempotent.
func (s *Subscriber) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), bus.DefaultCloseTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown is Close bounded by ctx: when ctx ends, the contexts of
// handlers still running are cancelled and their messages are left
// uncommitted, for another member to handle again.
func (s *Subscriber) Shutdown(ctx context.Context) error {
	s.health.Close()
	return s.state.Shutdown(ctx, func() error { return s.dlq.release(ctx) })
}

// kafkaLogger adapts a slog logger to kafka-go's printf logger, formatting
// only when the level is enabled.
func kafkaLogger(l *slog.Logger, level slog.Level) kafkago.Logger {
	return kafkago.LoggerFunc(func(format string, args ...any) {
		if l.Enabled(context.Background(), level) {
			l.Log(context.Background(), level, "kafka-go: "+fmt.Sprintf(format, args...))
		}
	})
}
