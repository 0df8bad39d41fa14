// Package driver is the contract between package bus and the adapters that
// connect it to a broker. Applications use package bus alone; this package
// is for whoever writes an adapter: it resolves Subscribe's options into a
// SubscribeConfig, checks and completes messages before Publish
// (PreparePublish), and registers a URL scheme for bus.OpenPublisher and
// bus.OpenSubscriber (Register).
//
// busline's own adapters (amqp, kafka, redispubsub, mem) are written
// against this package and some internal packages; an adapter outside the
// module writes the same thing against this package and bus, and proves it
// with the conformance suite in package bustest.
//
// # Writing an Adapter
//
// An adapter is a package with a Config, a ParseURL, a NewPublisher and a
// NewSubscriber. Its publisher implements bus.Publisher and its subscriber
// bus.Subscriber, with the contracts their doc comments give, and both
// implement the optional interfaces of package bus that apply:
//
//   - bus.CapabilityReporter, always: Capabilities says what the adapter
//     guarantees, and must tell the truth, since bustest picks its checks
//     by it and applications rely on it.
//   - bus.Shutdowner, whose Shutdown(ctx) is Close bounded by ctx; Close is
//     Shutdown with bus.DefaultCloseTimeout. Both are idempotent.
//   - bus.Aser, to reach the broker client (use AsValue), and
//     bus.ReceiverCounter where the broker says how many subscribers a
//     message reached.
//
// Publish runs PreparePublish first, with the broker's body limit, and
// returns nil only once the broker has taken every message. After Close it
// returns bus.ErrClosed.
//
// Subscribe runs NewSubscribeConfig first, passing bus.Logger(the adapter's
// logger) ahead of the caller's options so that a caller's bus.Logger wins.
// It then refuses what the adapter cannot do (a Group without
// Capabilities.Groups, for one) with an error wrapping bus.ErrUnsupported,
// and only then looks at its own state (bus.ErrClosed after Close). It
// wraps the handler once with SubscribeConfig.Wrap and runs the wrapped
// handler on each message under bus's Delivery Semantics:
//
//   - it fills Message.Delivery (Topic, Attempt from 1, Redelivered,
//     DeliveryCount, Native for Message.As);
//   - nil acknowledges; an error is retried under SubscribeConfig.Retry
//     (RetryPolicy.ShouldRetry and Backoff), or after bus.RetryDelay when
//     the handler asked for one; a panic becomes a *bus.PanicError and
//     counts as an error; after the last attempt, or at once for an error
//     that bus.IsPermanent reports and for a malformed envelope
//     (bus.ErrMalformed), the message is published to
//     SubscribeConfig.DeadLetter with the bus.MetaDeadLetter* metadata and
//     then acknowledged;
//   - a message whose dead letter cannot be published is left
//     unacknowledged, for the broker to deliver again;
//   - at most SubscribeConfig.Concurrency handlers run at once, and where
//     the adapter reports OrderedByKey, never two for one Key, in the
//     order published; a message waiting behind a busy key takes no
//     worker, and a subscription holds at most 4n messages (n when n is
//     1);
//   - a received message passes bus.Message.Validate: a header that
//     cannot be metadata as it is (IsReservedKey, empty or over-long
//     names, invalid UTF-8) goes under MetaForeignPrefix, and metadata
//     over bus.MaxMetadataBytes loses its largest entries, named under
//     MetaForeignDropped.
//
// Subscribe also keeps the Liveness rules of bus's package doc: it calls
// SubscribeConfig.Ready once, when a message published from then on will
// reach the subscription; a subscription that ends before that returns an
// error (why it could not go live, bus.ErrClosed, or ctx.Err()) without
// calling Ready; a live one returns nil when ctx ends or Close stops it,
// and an error only when it failed for good. When ctx ends, running
// handlers get a grace period (bus.DefaultCloseTimeout by default), then
// their contexts are cancelled and Subscribe returns without waiting for
// handlers that ignore their context, leaving their messages
// unacknowledged. Shutdown does the same when its ctx ends. Nothing waits
// for good.
//
// busline's own adapters share these rules through internal packages (a
// Subscribe skeleton, the retry and dead letter pipeline, the keyed worker
// pool, the Close lifecycle, the CloudEvents encoding). Go does not let a
// package outside the module import them, so an adapter outside it
// implements each rule above itself; bustest checks them all.
//
// # Registering a Scheme
//
// An adapter registers an Opener for its URL schemes from an init
// function, so that importing the package is enough for bus.OpenPublisher:
//
//	func init() { driver.Register("myq", opener{}) }
//
// The Opener parses the URL into the adapter's Config: settings are query
// parameters mapped one to one onto Config fields, and an unknown one is
// an error wrapping bus.ErrInvalid, never ignored. Errors and logs show the
// URL through bus.RedactURL. On error the Opener returns a nil interface,
// not a typed nil pointer.
//
// # Testing an Adapter
//
// bustest.Run runs the conformance suite against the real broker; it reads
// the subscriber's Capabilities to choose the checks that apply, and uses
// a fresh topic per check:
//
//	package myq_test
//
//	import (
//		"testing"
//
//		"github.com/busline/bus"
//		"github.com/busline/bus/bustest"
//		"example.com/myq"
//	)
//
//	func TestConformance(t *testing.T) {
//		cfg := myq.Config{Addr: "127.0.0.1:7000"}
//		bustest.Run(t, bustest.Harness{
//			NewPublisher: func(t *testing.T) bus.Publisher {
//				p, err := myq.NewPublisher(t.Context(), cfg)
//				if err != nil {
//					t.Fatal(err)
//				}
//				return p
//			},
//			NewSubscriber: func(t *testing.T) bus.Subscriber {
//				s, err := myq.NewSubscriber(t.Context(), cfg)
//				if err != nil {
//					t.Fatal(err)
//				}
//				return s
//			},
//		})
//	}
//
// Set Harness.NewTopic when the broker needs topics (and their dead letter
// topics) created, and Harness.ReadDeadLetters when the dead letter
// destination cannot be subscribed to.
package driver
