// Package redispubsub is the busline adapter for Redis pub/sub, built on
// github.com/redis/go-redis/v9 (imported as goredis). A topic is a Redis
// channel. Every subscription is a broadcast subscriber: it gets its own
// copy of every message published on its channel while it is connected,
// and nothing is kept for it otherwise. Redis pub/sub has no consumer
// groups, so Subscribe with bus.Group fails with an error wrapping
// errors.ErrUnsupported that names the alternatives (the amqp or kafka
// adapter, or Redis Streams); it never falls back to broadcast silently.
//
// # URLs
//
// Import the package (perhaps as _) to register the "redis" and "rediss"
// schemes with bus.OpenPublisher and bus.OpenSubscriber:
//
//	redis://[[user]:password@]host[:port][/db][?param=value&...]
//	rediss://...                       the same over TLS
//	redis://localhost:6379             defaults: 127.0.0.1:6379, database 0
//	redis://app:secret@cache:6379/2?format=raw
//	redis://127.0.0.1:7101?cluster=true&addrs=127.0.0.1:7102,127.0.0.1:7103
//
// The user info carries the ACL user name and password (or only a password
// for requirepass). The path picks the database, which only matters for the
// dead letter lists: channels are global to a server. Query parameters are
// the snake_case names of Config's fields, listed there with their
// defaults; an unknown or repeated parameter is an error wrapping
// bus.ErrInvalid. Errors and logs never contain the password.
//
// cluster=true talks to a Redis Cluster: the URL's host is the first seed
// node and addrs lists more. In a cluster, sharded=true is the default: it
// publishes with SPUBLISH and subscribes with SSUBSCRIBE, so a channel's
// traffic stays on the shard that owns its slot. sharded=false uses plain
// PUBLISH, which Redis copies to every node.
//
// format=structured (the default) sends each message as a CloudEvents 1.0
// structured-mode JSON document. format=raw sends Body alone, byte for byte,
// for plain Redis clients on the other side (the other Message fields are
// not sent). Receiving is lenient in both modes: a payload that is not a
// CloudEvents document, such as `PUBLISH notifications "Hello, Redis!"`
// from redis-cli, arrives with its body intact and a generated ID. In a
// structured document, metadata whose key is a CloudEvents extension name
// (lower-case letters and digits, at most 20, such as "tenant" or
// "traceparent") is a top-level member, read by CloudEvents SDKs as an
// extension; the rest travels in one string member, busmetadata, holding a
// JSON object. Receiving maps every member that is not an attribute to
// metadata under its own name (see bus.Message.Metadata for names that
// cannot be metadata as they are).
//
// # Topics and patterns
//
// A topic containing '*', '?' or '[' is a glob pattern and is subscribed
// to with PSUBSCRIBE ("orders.*" gets "orders.eu" and "orders.us");
// Delivery.Topic then holds the concrete channel. Write '\*' for a literal
// star. Sharded pub/sub has no patterns: a pattern with sharded=true is an
// error wrapping errors.ErrUnsupported.
//
// # Delivery Semantics
//
// Delivery is at most once. Redis hands a published message to the
// subscribers connected at that moment and forgets it. Publish returns nil
// once Redis has replied to the PUBLISH, which means it reached the
// subscribers connected then (PublishCount returns how many, as the
// PUBLISH reply says; in a cluster without sharding the count covers only
// the node that took the PUBLISH). Several messages in one Publish are
// pipelined in order.
//
// A PUBLISH whose connection fails before its reply arrives is not sent
// again: Redis may have carried it out, and a second copy would reach the
// subscribers twice. Publish returns the error (wrapping
// bus.ErrUnreachable) and the caller decides; the message may or may not
// have been delivered. In cluster mode go-redis's own redirect loop can
// still send such a command again, to the same or another node, up to its
// redirect limit: there a connection failure can deliver a message twice.
//
// Subscribe calls the bus.OnReady callback only after Redis confirmed the
// subscription; a message published after that reaches it. A subscription
// reads its connection in a goroutine of its own into a buffer of
// buffer_size messages, from which up to bus.Concurrency handlers take
// them (messages of one Key are handled in order, one at a time). When the
// buffer is full, the reader waits up to buffer_wait for room, then drops
// the message; while the buffer stays full it drops further messages
// without waiting, so the connection never backs up for long (a subscriber
// Redis finds too slow is disconnected by its client-output-buffer-limit,
// which loses more). Drops are counted in Subscriber.Stats and logged.
//
// A lost connection is re-established with backoff (from 50ms up to
// max_reconnect_backoff) and the subscription renewed; a connection silent
// for ping_interval is pinged and replaced when the ping goes unanswered
// for another interval. Redis cannot replay what was published in
// between: each such gap is logged at Warn level and counted in
// Stats.Gaps and Stats.GapTime.
//
// A handler error or panic is retried in process under the subscription's
// bus.RetryPolicy; after the last attempt (or at once for bus.Permanent
// errors, and for messages that claim to be CloudEvents but are
// malformed) the message is pushed with RPUSH onto a Redis list named
// after the dead letter topic (default: topic + ".dlq"), as a structured
// CloudEvents document carrying the error, the attempt count and the
// original topic in its metadata (the message's own metadata is dropped,
// largest first, when the whole would be over bus.MaxMetadataBytes). The list keeps what it gets
// (dead_letter_max_len caps it). Read it with LRANGE or BLPOP. A message
// is lost when the process dies while it is buffered, in a handler or
// waiting for a retry. A subscription that stops (its ctx ends, or Close)
// stops reading and then hands what it already buffered to the handler;
// only a Shutdown deadline cuts that short (the rest is discarded and
// counted in Stats.Discarded). Use the amqp or kafka
// adapter where losing a message is not acceptable.
//
// Close stops every subscription, lets the handlers finish running and
// buffered messages (Shutdown bounds the wait), and closes the connections. It is
// idempotent; Publish and Subscribe afterwards fail with bus.ErrClosed.
//
// # As
//
// Publisher.As and Subscriber.As set a *goredis.UniversalClient, and a
// **goredis.Client (standalone) or **goredis.ClusterClient (cluster mode).
// Message.As on a received message sets a **goredis.Message, which holds
// the channel, the matching pattern and the raw payload.
package redispubsub
