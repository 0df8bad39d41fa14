package bus

import (
	"context"
	"log/slog"
	"time"

	"github.com/busline/bus/internal/subcfg"
)

// Handler processes one received message. Returning nil acknowledges it.
// Returning an error (or panicking) leaves it unacknowledged: it is retried
// under the subscription's RetryPolicy and then dead-lettered. Wrap the
// error with Permanent to skip the retries.
//
// The context is cancelled when the message can no longer be settled in
// time: a Shutdown or Close deadline ran out, the grace after Subscribe's
// ctx ended ran out, or the adapter lost what the message was delivered on
// (a RabbitMQ channel, a Kafka partition revoked by a rebalance). A
// handler should return soon after; its message is then delivered again. Handlers run concurrently up to the
// subscription's Concurrency, but never two at once for one Key where the
// adapter reports OrderedByKey.
type Handler func(ctx context.Context, msg *Message) error

// Publisher sends messages to topics. It is safe for concurrent use.
type Publisher interface {
	// Publish sends msgs to topic, together when there are several, and
	// returns nil only once the broker has taken every one of them (a
	// publisher confirm, acks from all in-sync replicas, a PUBLISH reply).
	// On error, some of the messages may have been taken: publishing is
	// at-least-once. When the adapter knows that some were taken and
	// which, the error is a *PublishError listing the others; Unpublished
	// returns the messages to send again. Publish fills empty ID, Time, Source and Type in place.
	// After Close it returns ErrClosed.
	Publish(ctx context.Context, topic string, msgs ...*Message) error

	// Close flushes pending publishes and releases the connection. It is
	// idempotent; later calls return the first call's result.
	Close() error
}

// Subscriber receives messages from topics. It is safe for concurrent use;
// one Subscriber can run many subscriptions at once.
type Subscriber interface {
	// Subscribe runs h for every message on topic until ctx ends or the
	// Subscriber is closed, then drains: it stops taking messages, waits for
	// running handlers (bounded: see the package doc's Liveness) and
	// settles their messages. Once live (the OnReady callback), it returns
	// nil when ctx ends or Close stops it, and an error only when it failed
	// for good. Before that, every return is an error: bad arguments
	// (ErrInvalid), an unknown group or unreachable broker, ErrClosed after
	// Close, or ctx.Err() when ctx ended first.
	//
	// Without Group, a subscription is a broadcast subscriber: it gets its
	// own copy of every message published after it is ready, and nothing is
	// kept for it once it ends. With Group, subscriptions with the same group
	// name share the topic's messages, each message going to one of them.
	Subscribe(ctx context.Context, topic string, h Handler, opts ...SubscribeOption) error

	// Close stops every subscription, waits for running handlers to finish,
	// flushes acknowledgements and releases the connection. It is idempotent;
	// later calls return the first call's result. Subscribe after Close
	// returns ErrClosed.
	Close() error
}

// Shutdowner is implemented by publishers and subscribers whose drain can be
// bounded: Shutdown is Close that gives up waiting when ctx ends. It then
// cancels the contexts of handlers (and publishes) still running, releases
// the connection and returns ctx.Err() at once, even when a handler ignores
// its context: what did not finish is not acknowledged and is left for the
// broker to deliver again. Every busline adapter implements it.
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// Shutdown closes c, bounded by ctx when c implements Shutdowner.
func Shutdown(ctx context.Context, c interface{ Close() error }) error {
	if s, ok := c.(Shutdowner); ok {
		return s.Shutdown(ctx)
	}
	return c.Close()
}

// Capabilities tells what an adapter guarantees. bustest reads it to pick
// the checks that apply.
type Capabilities struct {
	// Groups: competing consumers that share a topic's messages.
	Groups bool
	// SingleGroup: a topic has exactly one group, which must be named after
	// the topic (RabbitMQ's work-queue topology: the queue is the group).
	SingleGroup bool
	// Broadcast: subscriptions without a group each get every message.
	Broadcast bool
	// DurableGroups: a group keeps the messages published while none of its
	// members is running, and delivers them later.
	DurableGroups bool
	// SurvivesRestart: messages kept for a group survive a broker restart.
	SurvivesRestart bool
	// OrderedByKey: messages with the same Key reach a subscription in the
	// order they were published and are never handled concurrently.
	OrderedByKey bool
	// AtLeastOnce: a message is acknowledged only after its handler
	// returned nil or it was dead-lettered; a crash means redelivery.
	// False means at-most-once: a message in flight when the process dies
	// is lost.
	AtLeastOnce bool
	// Patterns: topics may be patterns (Redis PSUBSCRIBE).
	Patterns bool
	// ReceiverCount: Publish can report how many subscribers got a message.
	ReceiverCount bool
}

// CapabilityReporter is implemented by publishers and subscribers that say
// what they guarantee. Every busline adapter implements it.
type CapabilityReporter interface {
	Capabilities() Capabilities
}

// ReceiverCounter is implemented by publishers whose broker tells how many
// subscribers a message reached (Redis PUBLISH's reply, the in-process
// broker). The seed's "Message sent to N subscribers" needs it. Where a
// configuration cannot count (Redis Cluster without sharding), the
// publisher's Capabilities report no ReceiverCount and PublishCount fails
// with ErrUnsupported; check Capabilities().ReceiverCount first.
type ReceiverCounter interface {
	// PublishCount publishes msg like Publish and returns the number of
	// subscriptions that received it.
	PublishCount(ctx context.Context, topic string, msg *Message) (int, error)
}

// Aser is implemented by publishers and subscribers that expose the broker
// client they use: As sets target to the native value when its type fits.
type Aser interface {
	As(target any) bool
}

// StartPosition says where a new group, one with no committed position,
// starts reading.
type StartPosition int

const (
	// StartEarliest reads everything the broker still holds. The default,
	// so that a group deployed after its producers misses nothing.
	StartEarliest StartPosition = iota
	// StartLatest reads only messages published after the group starts.
	StartLatest
)

// DefaultConcurrency is the number of messages a subscription handles at
// once when Concurrency is not given: one, which on RabbitMQ is the seed's
// prefetch(1) fair dispatch and on every adapter keeps strict order.
const DefaultConcurrency = 1

// DeadLetterSuffix is appended to a topic's name to name its default dead
// letter topic.
const DeadLetterSuffix = ".dlq"

// Metadata keys a dead-lettered message carries besides its own metadata.
const (
	MetaDeadLetterError    = "busline-dead-letter-error"
	MetaDeadLetterAttempts = "busline-dead-letter-attempts"
	MetaDeadLetterTopic    = "busline-dead-letter-topic"
	MetaDeadLetterGroup    = "busline-dead-letter-group"
	MetaDeadLetterTime     = "busline-dead-letter-time"
)

// SubscribeOption sets one setting of a Subscribe call. The options are
// the functions of this package that return one; adapters resolve them
// with driver.NewSubscribeConfig.
type SubscribeOption func(*subscribeOptions)

// subscribeOptions is what the options set; package driver reads it.
type subscribeOptions = subcfg.Options[StartPosition, RetryPolicy, Middleware]

// Group makes the subscription a member of the named consumer group.
func Group(name string) SubscribeOption { return func(c *subscribeOptions) { c.Group = name } }

// Concurrency lets up to n messages be handled at once (n >= 1).
func Concurrency(n int) SubscribeOption { return func(c *subscribeOptions) { c.Concurrency = n } }

// OnReady calls f once the subscription is live: from then on, a published
// message reaches it. Subscribe errors before that point are returned by
// Subscribe without f being called.
func OnReady(f func()) SubscribeOption { return func(c *subscribeOptions) { c.Ready = f } }

// StartFrom sets where a new group starts reading.
func StartFrom(p StartPosition) SubscribeOption { return func(c *subscribeOptions) { c.Start = p } }

// Retry sets the retry policy for failed handlers, used as written.
func Retry(p RetryPolicy) SubscribeOption { return func(c *subscribeOptions) { c.Retry = p } }

// DeadLetter sets the topic that failed and poison messages go to.
func DeadLetter(topic string) SubscribeOption {
	return func(c *subscribeOptions) { c.DeadLetter = topic }
}

// Logger sets the logger for this subscription.
func Logger(l *slog.Logger) SubscribeOption { return func(c *subscribeOptions) { c.Logger = l } }

// DiscardLogger returns a logger that drops everything; it is the default
// logger, so busline is silent unless given one. Every call returns the
// same logger.
func DiscardLogger() *slog.Logger { return discardLogger }

var discardLogger = slog.New(slog.DiscardHandler)

// DefaultCloseTimeout bounds Close: handlers still running after it are
// cancelled. Use Shutdown for a deadline of your own.
const DefaultCloseTimeout = 30 * time.Second
