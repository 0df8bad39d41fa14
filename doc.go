// Package bus is busline's event bus API: one small Publisher/Subscriber
// pair over RabbitMQ (package amqp), Kafka (package kafka), Redis pub/sub
// (package redispubsub) and an in-process broker (package mem). A service
// picks its broker with a URL in its config; its code does not change.
//
//	pub, err := bus.OpenPublisher(ctx, bus.URLFromEnv("")) // $BUS_URL, required
//	...
//	err = pub.Publish(ctx, "orders", &bus.Message{Type: "order.created", Body: body})
//
//	sub, err := bus.OpenSubscriber(ctx, bus.URLFromEnv(""))
//	...
//	err = sub.Subscribe(ctx, "orders", func(ctx context.Context, m *bus.Message) error {
//		return handle(m)
//	}, bus.Group("billing"), bus.Concurrency(8))
//
// # URLs
//
// OpenPublisher and OpenSubscriber take a URL whose scheme selects the
// adapter; each adapter registers its schemes when its package is imported
// (import it for its side effect: import _ "github.com/busline/bus/amqp").
// An unknown scheme is an error that lists the registered ones. Adapter
// settings are query parameters that map one to one onto the fields of the
// adapter's Config; an unknown parameter is an error, never ignored.
// Passwords are redacted from every error and log line (RedactURL).
//
//	mem://                                  in-process broker
//	amqp://guest:guest@127.0.0.1:5672/      RabbitMQ
//	kafka://127.0.0.1:9092/                 Kafka
//	redis://127.0.0.1:6379/0                Redis pub/sub
//
// URLFromEnv reads BUS_URL and falls back to the URL its caller names:
// "mem://" in a demo, "" in a service, where a missing BUS_URL is then an
// error instead of an in-process broker nobody else sees.
//
// # Delivery Semantics
//
// Publish returns nil only once the broker has taken every message. A
// handler returning nil acknowledges its message. An error or a panic does
// not lose it: the message is handed to the handler again with backoff
// under the subscription's RetryPolicy (DefaultRetry: 5 attempts), and
// after the last attempt it is published to the dead letter topic
// (topic + ".dlq" unless DeadLetter says otherwise) with the error, the
// attempt count and the original topic in its metadata, and then
// acknowledged. Errors wrapped with Permanent skip the retries. A received
// message that claims to be a busline envelope but is malformed goes to
// the dead letter topic at once. If the dead letter publish fails, the
// message is left unacknowledged, after a pause of a second, for the broker
// to redeliver; except that a dead letter never fails because of what the
// message carries: it always passes Message.Validate, one the broker
// refuses anyway (ErrInvalid, ErrTooLarge) is published again with only
// the body and the dead letter metadata, and when that is refused too the
// message is logged at Error and acknowledged, so that it cannot loop.
// A received message always passes Validate too, so that a handler can
// publish it again unchanged (see Message.Metadata).
//
// Without Group, a subscription is a broadcast subscriber: it gets its own
// copy of every message published after it is ready (OnReady), and nothing
// is kept for it once it ends. With Group, subscriptions that share a group
// name share the messages, each going to one member; a group keeps
// messages while no member runs where the adapter reports DurableGroups.
// Where a new group starts is StartEarliest unless StartFrom says
// otherwise. Each adapter's Capabilities say which guarantees hold:
//
//	             groups  broadcast  durable groups  survives restart  ordered by key        delivery
//	mem          yes     yes        yes (process)   no                yes                   at-least-once in process
//	amqp         yes     yes [1]    yes             yes               within a subscription at-least-once
//	kafka        yes     yes        yes             yes               yes                   at-least-once
//	redispubsub  no      yes        no              no                within a subscription at-most-once
//
// [1] Not in the amqp adapter's work-queue topology, where the queue named
// after the topic is the topic's only group (Capabilities.SingleGroup).
//
// Close and Shutdown drain: they stop taking messages, wait for running
// handlers, settle what finished, and release the connection. Close is
// idempotent. Publish and Subscribe after Close return ErrClosed.
//
// # Liveness
//
// Nothing waits for good; every adapter runs the same rules:
//
//   - Shutdown(ctx) waits for running handlers until ctx ends. Then it
//     cancels their contexts, releases the connection and returns
//     ctx.Err(), without waiting for handlers that ignore their context:
//     their messages are not acknowledged, and at-least-once brokers
//     deliver them again. Close is Shutdown with DefaultCloseTimeout.
//   - When a Subscribe's ctx ends, its handlers get a grace period
//     (DefaultCloseTimeout; the kafka adapter's handler_grace) to finish,
//     then their contexts are cancelled and Subscribe returns, leaving
//     what did not finish for redelivery.
//   - Subscribe checks its arguments first (ErrInvalid, or
//     ErrUnsupported for what the adapter cannot do, such as a group on
//     Redis pub/sub), then the Subscriber (ErrClosed after Close). A subscription that ends before
//     it is live returns an error: the reason it could not go live,
//     ErrClosed when Close came first, or ctx.Err() when ctx ended first;
//     OnReady is not called then. A live subscription returns nil when
//     ctx ends or Close stops it, and an error only when it failed for
//     good.
//   - A logger given with Logger is used as given, DiscardLogger()
//     included; the adapter's logger is only the default.
//   - A message waiting behind a busy Key takes no worker: with
//     Concurrency(n), a subscription holds at most 4n messages (n when n
//     is 1), handled or waiting, and a hot key cannot leave the other
//     keys waiting while workers are idle.
//   - Capabilities tell the truth: a publisher whose Capabilities report
//     no ReceiverCount fails PublishCount with ErrUnsupported.
//
// # As
//
// Message.As reaches the broker client's own value for a delivery, and
// publishers and subscribers that implement Aser reach the client they
// use; each adapter's package doc lists the types. Use them to read what
// busline does not model, knowing that code using them is tied to one
// broker.
//
// # Adapters
//
// Adapters are written against package github.com/busline/bus/driver,
// which holds what only they call (Register, NewSubscribeConfig,
// PreparePublish...) and gives the rules above from the adapter's side;
// package bustest checks that an adapter keeps them.
//
// Defaults are constants or functions (DefaultRetry, DiscardLogger), so
// that no code can change them for the whole process by mistake. The
// sentinel errors are variables, as error values made by errors.New are
// in Go; they are never to be assigned.
package bus
