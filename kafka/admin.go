package kafka

import (
	"context"
	"errors"
	"fmt"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
)

// CreateTopic creates topic on the cluster cfg names with the given
// partition count and replication factor (0 or less: the broker's
// defaults). A topic that already exists is not an error. The error of a
// failed creation wraps a bus sentinel where one fits (bus.ErrPermission,
// bus.ErrInvalid, bus.ErrUnreachable).
func CreateTopic(ctx context.Context, cfg Config, topic string, partitions, replication int) error {
	if err := driver.ValidateTopic(topic); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	c, err := newConn(cfg)
	if err != nil {
		return err
	}
	return c.createTopic(ctx, nil, topic, partitions, replication)
}

// admin returns a client on a transport of its own, so that its metadata
// is fresh rather than a cached view; call done when finished with it.
func (c *conn) admin() (client *kafkago.Client, done func()) {
	t := c.transport()
	return &kafkago.Client{Addr: c.addr(), Transport: t, Timeout: c.cfg.DialTimeout + c.cfg.WriteTimeout}, t.CloseIdleConnections
}

// createTopic creates topic through t (so that t's metadata cache learns of
// it), or through a client of its own when t is nil.
func (c *conn) createTopic(ctx context.Context, t *kafkago.Transport, topic string, partitions, replication int) error {
	if partitions <= 0 {
		partitions = -1
	}
	if replication <= 0 {
		replication = -1
	}
	client, done := c.admin()
	defer done()
	if t != nil {
		client.Transport = t
	}
	resp, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: replication,
	}}})
	if err != nil {
		return wrapErr(fmt.Sprintf("create topic %q", topic), err)
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return wrapErr(fmt.Sprintf("create topic %q", topic), err)
	}
	return nil
}

// partitions returns the partition IDs of topic, read fresh from the
// cluster without asking it to create the topic. A missing topic is an
// error wrapping bus.ErrNotFound.
func (c *conn) partitions(ctx context.Context, topic string) ([]int, error) {
	client, done := c.admin()
	defer done()
	resp, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, wrapErr("read metadata", err)
	}
	for _, t := range resp.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			if errors.Is(t.Error, kafkago.UnknownTopicOrPartition) {
				return nil, fmt.Errorf("kafka: topic %q: %w (create it, or set create_topics=true): %w", topic, bus.ErrNotFound, t.Error)
			}
			return nil, wrapErr(fmt.Sprintf("topic %q", topic), t.Error)
		}
		ids := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
		if len(ids) == 0 {
			break
		}
		return ids, nil
	}
	return nil, fmt.Errorf("kafka: topic %q: %w (create it, or set create_topics=true)", topic, bus.ErrNotFound)
}

// ensureTopic returns topic's partitions, creating the topic first when it
// is missing and CreateTopics is on.
func (c *conn) ensureTopic(ctx context.Context, t *kafkago.Transport, topic string) ([]int, error) {
	ids, err := c.partitions(ctx, topic)
	if err == nil || !errors.Is(err, bus.ErrNotFound) || !c.cfg.CreateTopics {
		return ids, err
	}
	if err := c.createTopic(ctx, t, topic, c.cfg.TopicPartitions, c.cfg.TopicReplication); err != nil {
		return nil, err
	}
	return c.partitions(ctx, topic)
}

// ping checks that the cluster can be reached and accepts our credentials.
func (c *conn) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*c.cfg.DialTimeout)
	defer cancel()
	client, done := c.admin()
	defer done()
	if _, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{}}); err != nil {
		if s := sentinel(err); c.sasl != nil && (s == nil || errors.Is(s, bus.ErrUnreachable) && !isDialErr(err)) {
			// The transport reports a failed SASL exchange as a dropped
			// connection; a direct dial gets the broker's own answer.
			if conn, derr := c.dialer().DialContext(ctx, "tcp", c.cfg.Brokers[0]); derr != nil {
				if errors.Is(sentinel(derr), bus.ErrPermission) {
					return wrapErr(fmt.Sprintf("SASL %s authentication as %q", c.cfg.SASL, c.cfg.Username), derr)
				}
			} else {
				_ = conn.Close()
			}
		}
		if sentinel(err) == nil && ctx.Err() != nil {
			return fmt.Errorf("kafka: connect to %v: %w: %w", c.cfg.Brokers, bus.ErrUnreachable, err)
		}
		return wrapErr(fmt.Sprintf("connect to %v", c.cfg.Brokers), err)
	}
	return nil
}

// lastOffsets returns the offset the next record of each partition will
// get (the high watermark).
func (c *conn) lastOffsets(ctx context.Context, topic string, parts []int) (map[int]int64, error) {
	client, done := c.admin()
	defer done()
	reqs := make([]kafkago.OffsetRequest, 0, len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafkago.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("list offsets of %q", topic), err)
	}
	out := make(map[int]int64, len(parts))
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, wrapErr(fmt.Sprintf("list offsets of %q partition %d", topic, po.Partition), po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	for _, p := range parts {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("kafka: list offsets of %q: no answer for partition %d", topic, p)
		}
	}
	return out, nil
}
