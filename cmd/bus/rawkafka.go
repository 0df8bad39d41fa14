package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/busline/bus/kafka"
)

// rawKafka runs the workload through kafka-go alone, with the URL's
// settings where kafka-go has them: a Writer with the URL's acks, batch
// size, compression and murmur2 partitioning by key (its batch timeout is
// the URL's batch_timeout, or 100µs when that is 0, since kafka-go's own
// default of 1s would hold every single-message publish for a second),
// and one Reader per partition starting at the partition's end, like the
// adapter's broadcast subscriber. With a group it joins the consumer group,
// reads its partitions from their ends (not from offsets committed by an
// earlier run) and commits what it has read every commit_interval. Its
// topic, TOPIC-raw, is created when missing with the partitions and
// replication of TOPIC, which busline's run has used before it; it is left
// in place for the next run. Messages are handed to -concurrency handlers by a hash
// of their key, so that each key stays in order. The value is the bare
// body, without busline's headers.
type rawKafka struct {
	cfg     kafka.Config
	client  *kafkago.Client
	dialer  *kafkago.Dialer
	writer  *kafkago.Writer
	cg      *kafkago.ConsumerGroup
	readers sync.WaitGroup
}

func openRawKafka(ctx context.Context, rawURL string) (benchClient, error) {
	cfg, err := kafka.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if cfg.TLS || cfg.SASL != "" || cfg.Username != "" {
		return nil, usagef("bench: -raw: the raw kafka-go client here speaks plain TCP only (no tls or sasl)")
	}
	// The adapter's documented defaults, for what the URL leaves unset.
	cfg.ClientID = cmp.Or(cfg.ClientID, "busline")
	cfg.Acks = cmp.Or(cfg.Acks, "all")
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, 10*time.Second)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, 1000)
	cfg.MaxMessageBytes = cmp.Or(cfg.MaxMessageBytes, 1<<20)
	cfg.SessionTimeout = cmp.Or(cfg.SessionTimeout, 30*time.Second)
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, 3*time.Second)
	cfg.RebalanceTimeout = cmp.Or(cfg.RebalanceTimeout, 30*time.Second)
	cfg.CommitInterval = cmp.Or(cfg.CommitInterval, 100*time.Millisecond)
	cfg.MaxWait = cmp.Or(cfg.MaxWait, 250*time.Millisecond)
	cfg.FetchMaxBytes = cmp.Or(cfg.FetchMaxBytes, 10<<20)
	acks := map[string]kafkago.RequiredAcks{"all": kafkago.RequireAll, "one": kafkago.RequireOne, "none": kafkago.RequireNone}[cfg.Acks]
	codec := map[string]kafkago.Compression{"gzip": kafkago.Gzip, "snappy": kafkago.Snappy, "lz4": kafkago.Lz4, "zstd": kafkago.Zstd}[cfg.Compression]
	tr := &kafkago.Transport{DialTimeout: cfg.DialTimeout, ClientID: cfg.ClientID}
	linger := cfg.BatchTimeout
	if linger == 0 {
		linger = 100 * time.Microsecond
	}
	r := &rawKafka{
		cfg:    cfg,
		client: &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Timeout: cfg.DialTimeout, Transport: tr},
		dialer: &kafkago.Dialer{Timeout: cfg.DialTimeout, ClientID: cfg.ClientID},
		writer: &kafkago.Writer{Addr: kafkago.TCP(cfg.Brokers...), Balancer: kafkago.Murmur2Balancer{},
			BatchTimeout: linger, BatchSize: cfg.BatchSize, BatchBytes: int64(cfg.MaxMessageBytes),
			RequiredAcks: acks, Compression: codec, Transport: tr},
	}
	if _, err := r.client.Metadata(ctx, &kafkago.MetadataRequest{}); err != nil {
		return nil, fmt.Errorf("bench: raw kafka-go: %w", err)
	}
	return r, nil
}

// ends returns the end offset of each of topic's partitions, or of the
// partitions given.
func (r *rawKafka) ends(ctx context.Context, topic string, parts []int) (map[int]int64, error) {
	if parts == nil {
		md, err := r.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return nil, err
		}
		for _, t := range md.Topics {
			if t.Error != nil {
				return nil, fmt.Errorf("topic %q: %w", topic, t.Error)
			}
			for _, p := range t.Partitions {
				parts = append(parts, p.ID)
			}
		}
	}
	req := make([]kafkago.OffsetRequest, len(parts))
	for i, p := range parts {
		req[i] = kafkago.LastOffsetOf(p)
	}
	res, err := r.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: req}})
	if err != nil {
		return nil, err
	}
	ends := make(map[int]int64, len(parts))
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", po.Partition, po.Error)
		}
		ends[po.Partition] = po.LastOffset
	}
	if len(ends) != len(parts) {
		return nil, fmt.Errorf("topic %q: end offsets of %d of %d partitions", topic, len(ends), len(parts))
	}
	return ends, nil
}

// ensureTopic creates topic when missing, shaped like like.
func (r *rawKafka) ensureTopic(ctx context.Context, topic, like string) error {
	md, err := r.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{like, topic}})
	if err != nil {
		return err
	}
	var parts, repl int
	for _, t := range md.Topics {
		switch {
		case t.Name == topic && t.Error == nil && len(t.Partitions) > 0:
			return nil
		case t.Name == like && t.Error == nil && len(t.Partitions) > 0:
			parts, repl = len(t.Partitions), len(t.Partitions[0].Replicas)
		}
	}
	if parts == 0 {
		return fmt.Errorf("topic %q, whose shape the raw run copies, was not found", like)
	}
	res, err := r.client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{
		{Topic: topic, NumPartitions: parts, ReplicationFactor: repl}}})
	if err != nil {
		return err
	}
	if err := res.Errors[topic]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q: %w", topic, err)
	}
	// Wait, within ctx, until every partition has a leader.
	for {
		md, err := r.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == parts {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %q not ready: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *rawKafka) subscribe(ctx context.Context, w *workload, h func([]byte)) (<-chan error, error) {
	if err := r.ensureTopic(ctx, w.topic, strings.TrimSuffix(w.topic, rawTopicSuffix)); err != nil {
		return nil, fmt.Errorf("bench: raw kafka-go: %w", err)
	}
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	workers := make([]chan []byte, w.concurrency)
	for i := range workers {
		workers[i] = make(chan []byte)
		go func() {
			for {
				select {
				case b := <-workers[i]:
					h(b)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	dispatch := func(ctx context.Context, m kafkago.Message) bool {
		f := fnv.New32a()
		f.Write(m.Key)
		select {
		case workers[f.Sum32()%uint32(len(workers))] <- m.Value:
			return true
		case <-ctx.Done():
			return false
		}
	}

	if w.group == "" {
		ends, err := r.ends(ctx, w.topic, nil)
		if err != nil {
			return nil, fmt.Errorf("bench: raw kafka-go: %w", err)
		}
		for p, from := range ends {
			r.readers.Add(1)
			go func() {
				defer r.readers.Done()
				if err := r.read(ctx, w.topic, p, from, dispatch, nil); err != nil {
					fail(err)
				}
			}()
		}
		return errc, nil
	}

	cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID: w.group, Brokers: r.cfg.Brokers, Dialer: r.dialer, Topics: []string{w.topic},
		HeartbeatInterval: r.cfg.HeartbeatInterval, SessionTimeout: r.cfg.SessionTimeout,
		RebalanceTimeout: r.cfg.RebalanceTimeout, JoinGroupBackoff: time.Second,
		StartOffset: kafkago.LastOffset,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: raw kafka-go: consumer group: %w", err)
	}
	r.cg = cg
	gen, err := cg.Next(ctx) // bound by ctx
	if err != nil {
		return nil, fmt.Errorf("bench: raw kafka-go: join group: %w", err)
	}
	var parts []int
	for _, pa := range gen.Assignments[w.topic] {
		parts = append(parts, pa.ID)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("bench: raw kafka-go: group %q got no partition of %q", w.group, w.topic)
	}
	ends, err := r.ends(ctx, w.topic, parts)
	if err != nil {
		return nil, fmt.Errorf("bench: raw kafka-go: %w", err)
	}
	var mu sync.Mutex
	read := map[int]int64{} // next offset to commit, per partition
	for p, from := range ends {
		r.readers.Add(1)
		gen.Start(func(gctx context.Context) {
			defer r.readers.Done()
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-gctx.Done():
					if ctx.Err() == nil {
						fail(errors.New("raw kafka-go: the group's generation ended (rebalance)"))
					}
					cancel()
				case <-rctx.Done():
				}
			}()
			err := r.read(rctx, w.topic, p, from, dispatch, func(off int64) {
				mu.Lock()
				read[p] = off + 1
				mu.Unlock()
			})
			if err != nil {
				fail(err)
			}
		})
	}
	gen.Start(func(gctx context.Context) { // commit what was read every commit_interval
		t := time.NewTicker(r.cfg.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-gctx.Done():
				return
			case <-ctx.Done():
				return
			}
			mu.Lock()
			offs := map[int]int64{}
			for p, o := range read {
				offs[p] = o
			}
			mu.Unlock()
			if len(offs) > 0 {
				if err := gen.CommitOffsets(map[string]map[int]int64{w.topic: offs}); err != nil && ctx.Err() == nil {
					fail(fmt.Errorf("raw kafka-go: commit: %w", err))
				}
			}
		}
	})
	return errc, nil
}

// read reads partition p of topic from offset from, handing each message
// to dispatch, until ctx ends.
func (r *rawKafka) read(ctx context.Context, topic string, p int, from int64,
	dispatch func(context.Context, kafkago.Message) bool, done func(offset int64)) error {
	rd := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: r.cfg.Brokers, Topic: topic, Partition: p, Dialer: r.dialer,
		QueueCapacity: 100, MinBytes: 1, MaxBytes: r.cfg.FetchMaxBytes, MaxWait: r.cfg.MaxWait,
	})
	defer rd.Close()
	if err := rd.SetOffset(from); err != nil {
		return fmt.Errorf("raw kafka-go: partition %d: %w", p, err)
	}
	for {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("raw kafka-go: partition %d: %w", p, err)
		}
		if !dispatch(ctx, m) {
			return nil
		}
		if done != nil {
			done(m.Offset)
		}
	}
}

func (r *rawKafka) publish(ctx context.Context, topic string, first int, bodies [][]byte) error {
	msgs := make([]kafkago.Message, len(bodies))
	for i, b := range bodies {
		msgs[i] = kafkago.Message{Topic: topic, Key: strconv.AppendInt(nil, int64(first+i), 10), Value: b}
	}
	if err := r.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("raw kafka-go: %w", err)
	}
	return nil
}

// close closes the writer (flushing nothing: every publish has returned),
// leaves the group and waits up to 5s for the readers, which end with the
// subscription's context.
func (r *rawKafka) close() error {
	err := r.writer.Close()
	r.writer.Transport.(*kafkago.Transport).CloseIdleConnections()
	if r.cg != nil {
		err = errors.Join(err, r.cg.Close())
	}
	done := make(chan struct{})
	go func() { r.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return err
}
