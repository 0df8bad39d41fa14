// Package amqp is the busline adapter for RabbitMQ (AMQP 0-9-1), built on
// github.com/rabbitmq/amqp091-go.
//
// Importing the package registers the schemes "amqp" and "amqps" with
// bus.OpenPublisher and bus.OpenSubscriber. NewPublisher and NewSubscriber
// take a Config directly.
//
// # URLs
//
//	amqp://user:password@host:5672/vhost?topology=workqueue&queue_type=quorum
//	amqps://user:password@host:5671/vhost?tls_ca_file=/etc/ca.pem&tls_cert_file=/etc/c.pem&tls_key_file=/etc/c.key
//
// The user, password, host, port and vhost go to the broker as
// amqp091-go reads them (an empty path is the vhost "/"; write %2F for it
// explicitly). Query parameters set the fields of Config; each field's
// doc names its parameter and default. An unknown parameter, a malformed
// value or a TLS file that cannot be read is an error wrapping
// bus.ErrInvalid. Passwords never appear in errors or logs.
//
// For a cluster, addrs=host2:5672,host3:5672 names more nodes: a connection
// goes to the URL's host or, when that does not answer, to each of them in
// turn, with the same credentials, vhost and TLS settings (the server name
// checked is each node's host unless tls_server_name is set). A lost
// connection is made again starting with the node that answered last, so
// publishers and subscribers move to another node by themselves; quorum
// queues (queue_type=quorum) keep their messages when a node goes.
//
// # Topologies
//
// topology=exchange (the default) gives every topic a durable fanout
// exchange named after it. A subscription with bus.Group(g) reads the
// durable queue "<topic>.<g>" bound to it (just "<topic>" when g is the
// topic itself), shared by every member of the group. A subscription
// without a group is a broadcast subscriber: it reads a queue of its own,
// "<topic>.broadcast.<id>", that gets every message published after
// OnReady. The queue outlives a lost connection, so what is published
// while the subscriber reconnects waits for it; it is deleted when the
// subscription ends, or by the broker once it has had no consumer for
// broadcast_expires (default 1m: a process that died). This is the default
// because it is the only topology that offers both of busline's
// subscription kinds, and because nothing piles up for nobody: a message
// is stored only in the queues of groups and subscribers that exist.
//
// Queue names never collide: a subscription never reads another one's
// queue. In exchange mode Subscribe refuses, with an error wrapping
// bus.ErrInvalid and before declaring anything, a group name containing
// '.' (the group "b.c" of topic "a" and the group "c" of topic "a.b"
// would share "a.b.c"), the group "dlq" ("<topic>.dlq" is the topic's dead
// letter queue), bus.Group(topic) or a dead letter topic whose name has a
// '.' and does not end in ".dlq" (its queue could be a group's queue), and
// on a topic ending in ".broadcast" a group named like a broadcast id.
// Plain names keep their queues: "orders.billing" for the group "billing",
// "orders" for bus.Group("orders"), "orders.dlq" for the dead letters.
//
// topology=workqueue is the classic work queue: a durable queue named
// after the topic on the default exchange, fed with persistent messages,
// read with manual acks and a prefetch for fair dispatch. The queue is the
// topic's only group, so Subscribe needs bus.Group(topic) (anything else is
// an error; no group wraps bus.ErrUnsupported), and there is no broadcast.
// Publish declares the queue, as a work-queue producer does, so messages
// wait for the workers that have not started yet. Use it to exchange
// messages with plain AMQP programs that use a durable queue of that name.
//
// queue_type=quorum declares group, work and dead letter queues as quorum
// queues (replicated; they count deliveries). Broadcast queues stay
// classic: they hold only what one subscriber has not read yet. They are
// durable with a queue TTL (x-expires = broadcast_expires), neither
// transient nor exclusive: RabbitMQ 4.3 refuses transient non-exclusive
// queues by default, and an exclusive queue would be deleted with its
// connection, losing what is published while its subscriber reconnects.
// A queue keeps the type it was first declared with: declaring it again
// with another type fails with an error wrapping bus.ErrInvalid.
//
// Every Subscribe also declares its dead letter topic (default
// "<topic>.dlq") as a durable destination: in exchange mode an exchange
// with a durable queue of the same name, so the dead letters are kept until
// read with bus.Group("<topic>.dlq").
//
// Dead letters are published by the subscriber, not by the broker's
// dead-letter exchange: they carry the handler's error and the attempt
// count, which the broker cannot add, and the queues are declared without
// x-dead-letter arguments, so that plain AMQP programs can declare the
// same queues and existing queues never clash. For what only the broker
// sees, use a policy that points its dead-lettering at the topic's dead
// letter queue; with quorum queues a delivery limit stops a message that
// crashes every process handling it from being redelivered forever:
//
//	rabbitmqctl set_policy --apply-to queues orders-dlx '^orders$' \
//	  '{"delivery-limit":20,"dead-letter-exchange":"","dead-letter-routing-key":"orders.dlq"}'
//
// # Delivery Semantics
//
// Publish puts every message on the wire as persistent with the mandatory
// flag on a channel in confirm mode, and returns nil only once the broker
// has confirmed every one of them. A message that reaches no queue (in
// exchange mode: a topic with no group and no broadcast subscriber yet) is
// returned by the broker and Publish fails with bus.ErrUnroutable; it is
// never dropped silently. Concurrent Publish calls and the messages of one
// call are pipelined on one channel and confirmed together, up to
// max_in_flight unconfirmed messages. If the connection or channel is lost
// before a confirm arrives, the message is published again on the next
// channel, within the caller's context: it may then be stored twice, but
// it is never reported as published without a confirm. Such a second copy
// carries the header busline-republished, and subscribers set
// Delivery.Redelivered on it, so that every possible duplicate is flagged. While the broker
// blocks publishers (a resource alarm) Publish waits, bounded by its
// context.
//
// A message the broker refuses fails its own Publish, and nothing else.
// RabbitMQ refuses a message by closing the channel: 406
// PRECONDITION_FAILED for a body over its max_message_size (16 MiB by
// default since RabbitMQ 4.0, 128 MiB before), 403 or 404 for rights and
// destinations. The close does not say which message it was, only why.
// The refused message is one of those unconfirmed at the close (the broker
// handles a channel's messages in order and confirms none it refuses)
// that the reason can be about: a body over the limit it names, a message
// to the exchange it names. When there is one such message, its Publish
// fails at once (for a missing exchange, once it is refused again alone on
// a channel that declared the exchange again). Otherwise these suspects are published again one at a
// time until one closes the channel alone: that one fails, the others go
// back to pipelined publishing, and one that was a suspect of two such
// closes is then only published alone. A message is thus sent at most three times
// because of refusals, and no caller waits for its context because of
// another's message. The error wraps bus.ErrTooLarge (size),
// bus.ErrPermission (403), bus.ErrNotFound (404) or bus.ErrInvalid and
// carries the broker's reason. Bodies over max_body_bytes (default 16 MiB,
// RabbitMQ 4's limit) fail with bus.ErrTooLarge before they are sent;
// with RabbitMQ 3.x and larger bodies, raise it.
//
// Subscriptions are at-least-once. The prefetch count is 1 for the default
// bus.Concurrency of 1 (fair dispatch), else 4 × Concurrency: the handlers'
// messages plus those waiting behind a busy key, so that one hot key never
// leaves the other keys undelivered. A message is
// acked after its handler returns nil; a failing handler is retried in
// process under the subscription's RetryPolicy, then the message is
// published (with confirms) to the dead letter topic and acked; a message
// that carries cloudEvents_specversion but is malformed goes to the dead
// letter topic at once. A message that could be neither handled nor
// dead-lettered (shutdown during a retry wait, a failed dead letter
// publish) is nacked and requeued. A dead letter can never fail because of
// what the message carries: it always passes bus.Message.Validate, one the
// broker refuses as invalid or too large is published again without the
// message's own metadata, and if that is refused too the message is logged
// at Error and acked rather than requeued forever. A Subscriber publishes dead letters on
// a second connection of its own, so that while a resource alarm holds a
// dead letter back, the broker keeps reading the subscriptions' acks.
// After a lost connection the
// subscription resumes on a new channel with backoff; the outcomes of
// deliveries from the dead channel are never acked on the new one: the
// broker redelivers those messages with the Redelivered flag set (quorum
// queues also count them in Delivery.DeliveryCount). Messages with one Key
// are handled in order by a subscription, except after such a
// redelivery. A broadcast subscriber gets what was published while it
// reconnected, if it is back within broadcast_expires; its queue is
// durable, so that holds across a broker restart too. Group and work queues
// are durable and their messages persistent, so they survive a broker
// restart.
//
// bus.StartFrom has no effect: a group's queue holds what was published
// to the topic since the queue was first declared.
//
// On the wire a message has the AMQP properties message_id (ID), type
// (Type), app_id (Source), timestamp (Time, in seconds), content_type
// (ContentType) and delivery_mode 2, and the headers
// cloudEvents_specversion, cloudEvents_time (full precision),
// cloudEvents_subject and cloudEvents_partitionkey (Key) where set. An ID,
// Type, Source or ContentType over 255 bytes, which no AMQP property
// holds, travels in its cloudEvents_ header instead. Metadata whose key is
// a CloudEvents extension name (lower-case letters and digits, at most 20,
// such as "tenant") travels as a cloudEvents_<key> header; other metadata,
// and always traceparent and tracestate, as plain headers (see
// bus.Message.Metadata). The body is untouched. A message without our
// headers is delivered as it came, with a generated ID when it has no
// message_id. Receiving maps every cloudEvents_<name> header that is not an
// attribute back to Metadata[name], so another CloudEvents producer's
// cloudEvents_tenant arrives as Metadata["tenant"]; a header that cannot be
// metadata as it is (a Kafka-style ce_ header, a value that is not UTF-8)
// arrives under a "busline-foreign-" key, so that every received message
// can be published again unchanged.
//
// # RabbitMQ Versions
//
// RabbitMQ 3.10 and later, 4.x included, are supported; the tests run on
// 3.10. Nothing declared uses a feature RabbitMQ 4 deprecates: no
// transient non-exclusive queue (refused by default since 4.3), no global
// QoS (the prefetch is per consumer), no classic queue mirroring (use
// queue_type=quorum).
//
// # As
//
// Message.As on a received message accepts *amqp091.Delivery. Publisher.As
// accepts **amqp091.Channel (the current publishing channel) and
// **amqp091.Connection; Subscriber.As accepts **amqp091.Connection. Do
// not ack, close or publish through them: the adapter owns them.
package amqp
