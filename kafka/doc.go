// Package kafka is the busline adapter for Apache Kafka (and brokers that
// speak its protocol), built on github.com/segmentio/kafka-go. Importing it
// registers the "kafka" URL scheme with bus.OpenPublisher and
// bus.OpenSubscriber.
//
// # URLs
//
//	kafka://[user:password@]host:port[,host:port...]/[?param=value&...]
//
// The host part lists the bootstrap brokers. User info turns on SASL (PLAIN
// unless sasl=scram-sha-256 or sasl=scram-sha-512 says otherwise); TLS is
// turned on with tls=true or any tls_* parameter, and applies to the
// producer's transport and the consumers' dialer alike. Each query
// parameter sets the Config field whose doc names it, with the default
// written there; an unknown parameter is an error wrapping bus.ErrInvalid.
// For example:
//
//	kafka://broker-1:9092,broker-2:9092/?create_topics=true&batch_timeout=2ms
//	kafka://svc:secret@broker:9093/?sasl=scram-sha-512&tls_ca_file=/etc/kafka/ca.pem
//
// Two parameters bound what a slow handler can hold up (see Delivery
// Semantics): max_uncommitted (default 10000) caps the messages of a
// partition read and not yet committed, and handler_grace (default 5s)
// is how long handlers may go on once their partitions are revoked or
// Subscribe's ctx ended. handler_grace plus heartbeat_interval must be
// below rebalance_timeout (default 30s).
//
// Topics are never created by surprise: Publish and Subscribe fail with an
// error wrapping bus.ErrNotFound for a missing topic unless
// create_topics=true, and CreateTopic creates one explicitly.
//
// # Delivery Semantics
//
// Publish returns nil once the brokers acknowledged every message with
// acks=all (every in-sync replica) by default. Concurrent Publish calls
// and the messages of one call share produce requests: one request to a
// broker carries the records of every partition it leads. A broker with
// no request in flight is sent to at once (batch_timeout, default 0, adds
// a wait for company); while one request is in flight to it, what arrives
// for its partitions gathers and goes in the next, up to batch_size
// records and max_message_bytes per partition. A partition has one batch
// in flight at a time, so its records keep their order, retries included;
// each caller returns once its own messages are acknowledged, and a
// failure in a shared request is returned to the callers whose records it
// held, not to the others. A request
// that fails with an error a retry can cure (a leader moving, a connection
// lost or refused under it) is sent again, backing off, for up to
// write_timeout, so its records may be stored twice; other failures are
// returned. A Publish whose ctx ends returns its error, and its records
// that are still waiting for a request are dropped, not sent later. The
// record key is the message Key, partitioned with murmur2 exactly as the
// Java client (and KafkaJS's default partitioner) does, so producers in
// any of these languages put one key on one partition; messages without a
// Key go to a random partition. The envelope is CloudEvents binary content
// mode: ce_id, ce_type, ce_source, ce_specversion, ce_time and ce_subject
// headers, a content-type header, the Body as the record value (the Key is
// the record key, never a ce_partitionkey header). Metadata whose key is a
// CloudEvents extension name (lower-case letters and digits, at most 20,
// such as "tenant") travels as a ce_<key> header, so CloudEvents SDKs read
// it as an extension; other metadata, and always traceparent and
// tracestate, as plain headers (see bus.Message.Metadata). Receiving maps
// every ce_<name> header that is not an attribute back to Metadata[name]:
// another CloudEvents producer's ce_tenant arrives as Metadata["tenant"].
// A header that cannot be metadata as it is (a RabbitMQ-style
// cloudEvents_ header, a key or value that is not UTF-8) arrives under a
// "busline-foreign-" key, so that every received message can be published
// again unchanged, to Kafka or to another broker.
//
// A Subscribe with bus.Group is a member of that Kafka consumer group: the
// group's members share the topic's partitions. A new group starts at the
// earliest offset (bus.StartFrom changes it). A Subscribe without a group
// is a broadcast subscriber: it reads every partition from the end it finds
// when it starts, joins no group, commits nothing and disturbs no group; it
// misses what was published while it was not running. Partitions added to
// the topic while it runs are read from their first offset once it sees
// them (it looks every 5 seconds), as group members pick them up after a
// rebalance.
//
// Consumption is at-least-once. Records are fetched, handled, and only
// then committed: an offset is committed once its handler returned nil,
// or its message went to the dead letter topic, and every earlier offset
// of the partition did too. Handlers run in parallel across partitions and
// across keys within a partition, up to bus.Concurrency at once (default
// 1); the messages of one key are handled one at a time, in offset order.
// Messages without a key may be handled in any order when Concurrency is
// above 1. A handler error is retried under the subscription's
// RetryPolicy; after the last attempt (or at once for bus.Permanent and for
// malformed ce_ envelopes) the message is published to the dead letter
// topic (default: the topic name with ".dlq") with the error, and its
// offset moves on. A message whose dead letter publish fails is read again
// rather than skipped, except when the failure is about what the message
// carries: the dead letter always passes bus.Message.Validate, one over
// max_message_bytes (a record near the limit plus the dead letter
// metadata) is published again without the message's own metadata, and if
// that is refused too as invalid or too large, the message is logged at
// Error and its offset moves on, so that its partition never stops there. Records from plain producers (no ce_ headers) are
// delivered with their value as Body and their position as ID,
// "<topic>/<partition>/<offset>": the same on every delivery, so it serves
// as an idempotency key.
//
// Reading a partition runs ahead of what is committed by at most
// max_uncommitted messages (default 10000); at the cap it pauses, and it
// resumes as offsets are committed. A slow, retrying or stuck message
// therefore lets at most that many later messages of its partition be
// read, and a crash leaves at most that many of each partition to be
// handled again. (kafka-go's reader also fetches up to 100 messages, at
// most max_uncommitted, ahead into memory; they are not handed out before
// there is room.) A broadcast subscriber, which commits nothing, counts
// from the oldest message of the partition not yet handled.
//
// On a rebalance, a member stops reading its partitions, lets running
// handlers finish for up to handler_grace (default 5s; a handler waiting
// to retry gives up its message at once), then cancels the contexts of
// the handlers still running, commits what finished and rejoins without
// waiting for them: a member joining the group holds the others up for
// about heartbeat_interval plus handler_grace, never rebalance_timeout.
// What did not finish is left uncommitted, and the partition's next owner
// handles it again. A member never commits for a partition after the
// generation that owned it ended: a handler that ignores its context and
// returns later changes nothing, and the next owner starts from the last
// committed offset. A member that dies leaves its uncommitted messages to
// be handled again by the member that takes over its partitions after
// session_timeout. Delivery.Redelivered is set when this subscription
// handed the same offset to a handler before (a message read again after
// one before it was left unsettled, or a partition that came back to this
// member after a rebalance). Kafka does not say whether another member or
// an earlier process read an offset, so such messages are not flagged, and
// Delivery.DeliveryCount is 0: handlers must be idempotent. When
// Subscribe's ctx ends, its handlers get handler_grace too, and Subscribe
// returns once they finished or the grace ran out, even while a handler
// ignores its context. Close and Shutdown drain the same way, but wait for
// handlers until their own deadline, and leave the group. OnReady is
// called once the member holds its first assignment, or, for a broadcast
// subscriber, once its start offsets are fixed: a message published after
// OnReady is received.
//
// # As
//
// Message.As accepts *kafkago.Message (the record as received, with its
// partition, offset and headers), where kafkago is
// github.com/segmentio/kafka-go. Publisher.As accepts *(*kafkago.Client),
// which sends its produce requests, and *(*kafkago.Transport);
// Subscriber.As accepts *(*kafkago.Dialer), a copy of the dialer its
// readers use, and *(*kafkago.Client) for its dead letters.
package kafka

import (
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/opener"
)

func init() {
	driver.Register(Scheme, opener.Funcs[Config, *Publisher, *Subscriber]{
		Parse: parseURL, NewPublisher: NewPublisher, NewSubscriber: NewSubscriber})
}
