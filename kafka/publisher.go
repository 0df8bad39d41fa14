package kafka

import (
	"context"
	"fmt"
	"sync"

	kafkago "github.com/segmentio/kafka-go"
	metadataapi "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/ce"
	"github.com/busline/bus/internal/health"
	"github.com/busline/bus/internal/lifecycle"
)

// Publisher publishes to Kafka topics through kafka-go's Client. It is
// safe for concurrent use: concurrent Publish calls share produce requests.
type Publisher struct {
	c     *conn
	t     *kafkago.Transport
	prod  *producer
	state *lifecycle.State
	known sync.Map // topic name → struct{}: checked to exist and in t's cache

	health *health.Tracker // observed from each publish
}

var (
	_ bus.Publisher          = (*Publisher)(nil)
	_ bus.Shutdowner         = (*Publisher)(nil)
	_ bus.CapabilityReporter = (*Publisher)(nil)
	_ bus.Aser               = (*Publisher)(nil)
)

// NewPublisher connects to the cluster cfg names and returns a Publisher.
// It fails when the brokers cannot be reached (bus.ErrUnreachable) or
// reject the credentials (bus.ErrPermission) before ctx ends.
func NewPublisher(ctx context.Context, cfg Config) (*Publisher, error) {
	c, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.ping(ctx); err != nil {
		return nil, err
	}
	return newPublisher(c), nil
}

func newPublisher(c *conn) *Publisher {
	acks, _ := requiredAcks(c.cfg.Acks)
	codec, _ := compressionCodec(c.cfg.Compression)
	t := c.transport()
	prod := &producer{
		client:      &kafkago.Client{Addr: c.addr(), Transport: t},
		acks:        acks,
		compression: codec,
		linger:      c.cfg.BatchTimeout,
		maxRecords:  c.cfg.BatchSize,
		maxBytes:    c.cfg.MaxMessageBytes,
		timeout:     c.cfg.WriteTimeout,
		queues:      map[partitionKey]*partitionQueue{},
		senders:     map[int]*brokerSender{},
	}
	return &Publisher{c: c, t: t, prod: prod, state: lifecycle.New(), health: health.NewTracker(bus.HealthLive)}
}

// Publish sends msgs to topic, keyed by each message's Key (partitioned by
// murmur2 as the Java client does; messages without a key go to a random
// partition), with the CloudEvents attributes as ce_* headers. It returns
// nil once the brokers acknowledged every message with the configured acks
// (default: all in-sync replicas). A missing topic fails with
// bus.ErrNotFound unless create_topics is on; a record over
// max_message_bytes fails with bus.ErrTooLarge before anything is sent.
// When ctx ends first, Publish returns its error: messages still waiting
// for their partition's request are then dropped, while those already in
// a request in flight may still be stored. After Close it returns
// bus.ErrClosed.
func (p *Publisher) Publish(ctx context.Context, topic string, msgs ...*bus.Message) error {
	leave, err := p.state.Enter()
	if err != nil {
		return fmt.Errorf("kafka: publish: %w", err)
	}
	defer leave()
	// A Shutdown whose deadline ran out cuts waiting publishes short.
	ctx, cancel := context.WithCancel(ctx)
	defer context.AfterFunc(p.state.HandlerContext(), cancel)()
	defer cancel()
	err = p.publish(ctx, topic, msgs)
	p.health.Observe(err)
	return err
}

// Health reports whether the last publish reached the cluster (see
// bus.Health): reconnecting, with the error, from a publish that could
// not reach it until one that does.
func (p *Publisher) Health() bus.Health { return p.health.Health() }

func (p *Publisher) publish(ctx context.Context, topic string, msgs []*bus.Message) error {
	if err := driver.PreparePublish(topic, msgs, p.c.cfg.MaxMessageBytes); err != nil {
		return fmt.Errorf("kafka: publish to %q: %w", topic, err)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := p.ensureTopic(ctx, topic); err != nil {
		return err
	}
	kms := make([]kafkago.Message, len(msgs))
	for i, m := range msgs {
		kms[i] = encode(topic, m)
		if n := recordSize(&kms[i]); n > p.c.cfg.MaxMessageBytes {
			return fmt.Errorf("kafka: publish to %q: %w: message %d is %d bytes with headers, over max_message_bytes %d",
				topic, bus.ErrTooLarge, i, n, p.c.cfg.MaxMessageBytes)
		}
	}
	if err := p.prod.send(ctx, topic, kms); err != nil {
		return wrapErr(fmt.Sprintf("publish to %q", topic), err)
	}
	return nil
}

// ensureTopic checks once per topic that it exists (creating it when
// create_topics is on) and that the transport's metadata cache knows it.
func (p *Publisher) ensureTopic(ctx context.Context, topic string) error {
	if _, ok := p.known.Load(topic); ok {
		return nil
	}
	if _, err := p.c.ensureTopic(ctx, p.t, topic); err != nil {
		return err
	}
	// The topic exists now; asking for it with auto-creation set is how the
	// publisher's transport is made to refresh its cached metadata (it serves
	// plain metadata requests from the cache). Nothing is created.
	if _, err := p.t.RoundTrip(ctx, p.c.addr(), &metadataapi.Request{TopicNames: []string{topic}, AllowAutoTopicCreation: true}); err != nil {
		return wrapErr(fmt.Sprintf("read metadata of %q", topic), err)
	}
	p.known.Store(topic, struct{}{})
	return nil
}

// partitionKeyHeader is left out of records: the record key is the
// partition key.
const partitionKeyHeader = ce.KafkaPrefix + ce.AttrPartitionKey

// encode maps m onto a Kafka record in CloudEvents binary content mode.
func encode(topic string, m *bus.Message) kafkago.Message {
	km := kafkago.Message{Topic: topic, Value: m.Body, Time: m.Time}
	if m.Key != "" {
		km.Key = []byte(m.Key)
	}
	km.Headers = make([]kafkago.Header, 0, 8+len(m.Metadata))
	// Header values share one buffer: one allocation per record instead of
	// one per header. A slice keeps pointing at the array it was cut from
	// when append moves on to a bigger one, so earlier values stay intact.
	buf := make([]byte, 0, 128)
	ce.EncodeBinary(m, ce.KafkaPrefix, func(k, v string) {
		if k == partitionKeyHeader {
			return // the record key carries it (the Kafka binding's rule)
		}
		start := len(buf)
		buf = append(buf, v...)
		km.Headers = append(km.Headers, kafkago.Header{Key: k, Value: buf[start:len(buf):len(buf)]})
	})
	if m.ContentType != "" {
		km.Headers = append(km.Headers, kafkago.Header{Key: ce.ContentTypeHeader, Value: []byte(m.ContentType)})
	}
	return km
}

// recordSize is the size of a record as the broker counts it against
// message.max.bytes, near enough: key, value, headers and framing.
func recordSize(km *kafkago.Message) int {
	n := 21 + len(km.Key) + len(km.Value) // attributes, deltas, lengths
	for _, h := range km.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n + 61 // the record batch header
}

// Capabilities reports what the Kafka adapter guarantees.
func (p *Publisher) Capabilities() bus.Capabilities { return capabilities }

var capabilities = bus.Capabilities{
	Groups:          true,
	Broadcast:       true,
	DurableGroups:   true,
	SurvivesRestart: true,
	OrderedByKey:    true,
	AtLeastOnce:     true,
}

// As sets target to the publisher's *kafkago.Client (which sends its
// produce requests) or *kafkago.Transport.
func (p *Publisher) As(target any) bool {
	return driver.AsValue(p.prod.client, target) || driver.AsValue(p.t, target)
}

// Close waits for running Publish calls and the produce requests they
// started, then closes the publisher's connections. It is idempotent.
func (p *Publisher) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), bus.DefaultCloseTimeout)
	defer cancel()
	return p.Shutdown(ctx)
}

// Shutdown is Close bounded by ctx: running Publish calls that are still
// waiting when ctx ends return their context's error.
func (p *Publisher) Shutdown(ctx context.Context) error {
	p.health.Closed()
	return p.state.Shutdown(ctx, func() error { return p.release(ctx) })
}

func (p *Publisher) release(ctx context.Context) error {
	// Every Publish call has returned; requests still in flight belong to
	// calls that gave up waiting. Let them finish, bounded by one request
	// and by the caller.
	ctx, cancel := context.WithTimeout(ctx, p.c.cfg.WriteTimeout)
	defer cancel()
	err := p.prod.wait(ctx)
	p.t.CloseIdleConnections()
	if err != nil {
		return wrapErr("close publisher: produce requests still running", err)
	}
	return nil
}
