package bus

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Adapters wrap them (together with the broker's own error)
// so that callers can test for a class of failure with errors.Is, whatever
// broker is underneath. Their texts carry no package prefix, because they
// are always read inside an error that has one: "amqp: permission denied:
// broker ... refused the credentials", not "amqp: bus: permission
// denied: ...".
var (
	// ErrClosed is returned by Publish and Subscribe once Close (or Shutdown)
	// has been called on the Publisher or Subscriber.
	ErrClosed = errors.New("closed")

	// ErrUnsupported is returned when an adapter cannot do what was asked, for
	// example a consumer group on Redis pub/sub. It is errors.ErrUnsupported,
	// so either name works with errors.Is.
	ErrUnsupported = errors.ErrUnsupported

	// ErrInvalid reports bad input from the caller: an empty topic, a nil
	// handler, a bad URL or URL parameter, invalid metadata.
	ErrInvalid = errors.New("invalid argument")

	// ErrTooLarge reports a message (body or metadata) over the adapter's limit.
	ErrTooLarge = errors.New("message too large")

	// ErrMalformed reports a received message that claims to be a busline
	// (CloudEvents) envelope but cannot be decoded. Such a message is a poison
	// message: it is sent to the dead letter destination, never redelivered.
	ErrMalformed = errors.New("malformed message")

	// ErrNotFound reports a destination that does not exist, such as a Kafka
	// topic when topic creation is off or a RabbitMQ vhost.
	ErrNotFound = errors.New("not found")

	// ErrUnroutable reports a published message the broker accepted but could
	// not route to any queue; it was not stored anywhere.
	ErrUnroutable = errors.New("message unroutable")

	// ErrPermission reports rejected credentials or a denied operation.
	ErrPermission = errors.New("permission denied")

	// ErrUnreachable reports a broker that could not be reached at all.
	ErrUnreachable = errors.New("broker unreachable")
)

// permanentError marks a handler error that must not be retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that the subscriber does not retry the message: it
// goes straight to the dead letter destination. Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// PanicError is the error a handler's panic is turned into. The message is
// then treated as if the handler had returned this error.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine stack at the point of the panic.
	Stack []byte
}

// Error reports the panic value; the stack is in Stack.
func (e *PanicError) Error() string { return fmt.Sprintf("bus: handler panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error, so that errors.Is
// and errors.As see through the panic; otherwise nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// retryAfterError asks for a retry after a delay of the handler's choice.
type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("retry after %v: %v", e.delay, e.err)
}
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter wraps err to ask that the message be handed to the handler
// again after d, instead of after the retry policy's backoff, and without
// counting the attempt as a failure against RetryPolicy.MaxAttempts: for a
// downstream that answered "try again in 30 seconds", say. The message
// stays unacknowledged meanwhile (on RabbitMQ it keeps its prefetch slot;
// on Kafka its partition's commits wait behind it), and a Close or Shutdown
// ends the wait, leaving it for redelivery. Delivery.Attempt still counts
// every call. RetryAfter(nil, d) returns nil; a negative d counts as 0.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, delay: max(d, 0)}
}

// RetryDelay reports the delay err asks for with RetryAfter, if it does.
// An error also marked Permanent is not retried at all.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.delay, true
	}
	return 0, false
}

// PublishError is the error of a Publish of several messages of which the
// broker took some and not others. Failed lists, in increasing order, the
// indexes (into Publish's msgs) of the messages that were not taken, or
// whose fate is unknown; every other message was taken. Err is the first
// failure. A Publish error that is not a *PublishError says nothing of the
// kind: treat every message as not taken.
type PublishError struct {
	Failed []int
	Err    error
}

// Error reports how many messages failed, and why the first did.
func (e *PublishError) Error() string {
	return fmt.Sprintf("%d of the messages not published: %v", len(e.Failed), e.Err)
}

// Unwrap returns Err, so that errors.Is sees the cause.
func (e *PublishError) Unwrap() error { return e.Err }

// Unpublished returns the messages of msgs that the failed Publish that
// returned err may not have published: those a *PublishError lists, or
// all of them for any other non-nil error, and none for nil. Resending
// them (with their IDs, which Publish filled) is what an at-least-once
// producer does.
func Unpublished(err error, msgs []*Message) []*Message {
	if err == nil {
		return nil
	}
	var pe *PublishError
	if !errors.As(err, &pe) {
		return msgs
	}
	out := make([]*Message, 0, len(pe.Failed))
	for _, i := range pe.Failed {
		if i >= 0 && i < len(msgs) {
			out = append(out, msgs[i])
		}
	}
	return out
}
