// Package pipeline runs a handler on one received message under the core
// policy every adapter shares: nil acks; an error or panic is retried with
// backoff under the subscription's RetryPolicy; a permanent error, the last
// failed attempt or a poison message goes to the dead letter topic with the
// error, attempt count and original topic in its metadata, and is then
// acked. A dead letter is built so that it always passes
// bus.Message.Validate, and one the destination refuses for what it
// carries is sent again without the message's own metadata, then given up
// (logged at Error, and acked): no message loops because of what it
// carries. Adapters only settle the outcome on their broker.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/ce"
)

// Outcome is how the adapter must settle a message.
type Outcome int

const (
	// Ack: the handler succeeded, or the message was dead-lettered.
	Ack Outcome = iota
	// Abandon: neither handled nor dead-lettered (shutdown during a retry
	// wait, or the dead letter publish failed). Do not ack: leave it for the
	// broker to redeliver.
	Abandon
)

// DeadLetterFunc publishes a dead-lettered message to topic and returns
// nil only once the broker has taken it.
type DeadLetterFunc func(ctx context.Context, topic string, m *bus.Message) error

// Runner handles messages for one subscription. Its fields are set once,
// before the first Handle; Handle is safe for concurrent use.
type Runner struct {
	Topic   string
	Config  driver.SubscribeConfig
	Handler bus.Handler
	// DeadLetter publishes to the dead letter topic.
	DeadLetter DeadLetterFunc
	// Stop interrupts retry waits when the subscription stops taking work.
	Stop <-chan struct{}
}

// Handle runs the handler on m until it succeeds, is dead-lettered or must
// be abandoned. It sets m.Delivery.Attempt before each call. ctx is the
// handler's context: the adapter cancels it when the message can no longer
// be settled in time (a shutdown deadline, a revoked partition, a lost
// channel); the message is then abandoned, never dead-lettered.
func (r *Runner) Handle(ctx context.Context, m *bus.Message) Outcome {
	if ctx.Err() != nil {
		// Queued behind others until its context ended: its delivery is
		// already given up, so the handler does not see it.
		return Abandon
	}
	failures := 0 // attempts that count against the retry policy
	for attempt := 1; ; attempt++ {
		m.Delivery.Attempt = attempt
		err := r.call(ctx, m)
		if err == nil {
			return Ack
		}
		log := r.Config.Logger
		if ctx.Err() != nil {
			// The handler was cut short: leave the message for
			// redelivery rather than dead-letter it.
			return Abandon
		}
		later, asked := bus.RetryDelay(err)
		if !asked {
			failures++
		}
		if bus.IsPermanent(err) || !asked && !r.Config.Retry.ShouldRetry(failures) {
			return r.deadLetter(ctx, m, err, attempt)
		}
		wait := later
		if !asked {
			wait = r.Config.Retry.Backoff(failures)
		}
		log.Debug("bus: handler failed, retrying", "topic", r.Topic, "id", m.ID, "attempt", attempt, "backoff", wait, "error", err)
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.Stop:
				t.Stop()
				return Abandon
			case <-ctx.Done():
				t.Stop()
				return Abandon
			}
		} else {
			select {
			case <-r.Stop:
				return Abandon
			case <-ctx.Done():
				return Abandon
			default:
			}
		}
	}
}

// call runs the handler, turning a panic into a *bus.PanicError.
func (r *Runner) call(ctx context.Context, m *bus.Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &bus.PanicError{Value: v, Stack: debug.Stack()}
			r.Config.Logger.Error("bus: handler panicked", "topic", r.Topic, "id", m.ID, "panic", v)
		}
	}()
	return r.Handler(ctx, m)
}

// Poison dead-letters a message that could not be decoded; reason says
// why. ctx is the message's handler context, as for Handle.
func (r *Runner) Poison(ctx context.Context, m *bus.Message, reason error) Outcome {
	return r.deadLetter(ctx, m, reason, 0)
}

// deadLetter publishes the dead letter of m and says how to settle m. A
// dead letter the destination refuses for what it carries (an error
// wrapping bus.ErrInvalid or bus.ErrTooLarge) is published again as
// MinimalDeadLetter; when that is refused too, the message is logged at
// Error and acked, since publishing it again could only fail again. Any
// other failure leaves the message for redelivery.
func (r *Runner) deadLetter(hctx context.Context, m *bus.Message, cause error, attempts int) Outcome {
	dl := DeadLetterMessage(m, cause, attempts, r.Topic, r.Config.Group)
	// The publish gets its own bounded context: shutdown must not turn a
	// message that failed for good into one that is redelivered forever.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := r.Config.Logger
	err := r.DeadLetter(ctx, r.Config.DeadLetter, dl)
	if refused(err) {
		log.Warn("bus: dead letter refused; publishing it again without the message's metadata",
			"topic", r.Topic, "dead_letter", r.Config.DeadLetter, "id", m.ID, "error", err)
		err = r.DeadLetter(ctx, r.Config.DeadLetter, MinimalDeadLetter(m, cause, attempts, r.Topic, r.Config.Group))
		if refused(err) {
			log.Error("bus: dead letter refused even without the message's metadata; message dropped",
				"topic", r.Topic, "dead_letter", r.Config.DeadLetter, "id", m.ID, "attempts", attempts,
				"cause", cause, "error", err)
			return Ack
		}
	}
	if err != nil {
		log.Error("bus: dead letter publish failed; message left for redelivery",
			"topic", r.Topic, "dead_letter", r.Config.DeadLetter, "id", m.ID, "error", err)
		// Redelivery comes at once on most brokers: pause first, so that a
		// dead letter destination that keeps failing does not turn into a
		// hot loop of deliveries.
		r.pause(hctx, deadLetterFailurePause)
		return Abandon
	}
	log.Warn("bus: message dead-lettered", "topic", r.Topic, "dead_letter", r.Config.DeadLetter,
		"id", m.ID, "attempts", attempts, "error", cause)
	return Ack
}

// refused reports whether a publish failed because of what the message
// carries: publishing the same message again cannot succeed.
func refused(err error) bool {
	return errors.Is(err, bus.ErrInvalid) || errors.Is(err, bus.ErrTooLarge)
}

// maxErrorBytes caps the error text a dead letter carries, so that a huge
// error cannot push its metadata over bus.MaxMetadataBytes.
const maxErrorBytes = 4 << 10

// deadLetterFailurePause is how long Handle waits after a failed dead
// letter publish before it returns Abandon (cut short by Stop or the handler context).
const deadLetterFailurePause = time.Second

// pause waits d, or less when the subscription stops or ctx ends.
func (r *Runner) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Stop:
	case <-ctx.Done():
	}
}

// DeadLetterMessage returns a copy of m for the dead letter topic, its
// metadata extended with the error, the attempt count, the original topic
// and group, and the time. The copy always passes bus.Message.Validate,
// whatever m carries: metadata that could not be published as it is
// becomes foreign metadata (see bus.Message.Metadata), and when the whole
// adds up to more than bus.MaxMetadataBytes the message's largest entries
// are dropped (listed under driver.MetaForeignDropped), the dead letter
// entries last. The body is never changed.
func DeadLetterMessage(m *bus.Message, cause error, attempts int, topic, group string) *bus.Message {
	dl := m.Clone()
	if dl.Metadata == nil {
		dl.Metadata = make(map[string]string, 5)
	}
	addDeadLetterMeta(dl.Metadata, cause, attempts, topic, group, maxErrorBytes)
	dl.Metadata = ce.SafeMetadata(dl.Metadata, bus.MaxMetadataBytes, deadLetterPrefix)
	return dl
}

// MinimalDeadLetter is the dead letter of m without m's own metadata: its
// body and attributes, and the dead letter entries with the error cut to
// 512 bytes. It is what is published when the destination refuses
// DeadLetterMessage as invalid or too large.
func MinimalDeadLetter(m *bus.Message, cause error, attempts int, topic, group string) *bus.Message {
	dl := m.Clone()
	dl.Metadata = make(map[string]string, 5)
	addDeadLetterMeta(dl.Metadata, cause, attempts, topic, group, minimalErrorBytes)
	return dl
}

// deadLetterPrefix starts every dead letter metadata key.
const deadLetterPrefix = "busline-dead-letter-"

// minimalErrorBytes caps the error text of a MinimalDeadLetter.
const minimalErrorBytes = 512

// addDeadLetterMeta sets the dead letter entries, the error text cut to
// max bytes and made valid UTF-8.
func addDeadLetterMeta(md map[string]string, cause error, attempts int, topic, group string, max int) {
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
		var pe *bus.PanicError
		if errors.As(cause, &pe) {
			msg = fmt.Sprintf("panic: %v", pe.Value)
		}
	}
	if len(msg) > max {
		msg = msg[:max] + "..."
	}
	md[bus.MetaDeadLetterError] = strings.ToValidUTF8(msg, "\ufffd")
	md[bus.MetaDeadLetterAttempts] = strconv.Itoa(attempts)
	md[bus.MetaDeadLetterTopic] = topic
	if group != "" {
		md[bus.MetaDeadLetterGroup] = group
	}
	md[bus.MetaDeadLetterTime] = time.Now().UTC().Format(time.RFC3339Nano)
}

// Logger returns l, or bus.DiscardLogger() when l is nil.
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return bus.DiscardLogger()
	}
	return l
}
