package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/busline/bus"
)

// wrapErr turns a kafka-go or network error into one that starts with
// "kafka: ", names what was being done and wraps both the matching bus
// sentinel (when there is one) and the original error.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if s := sentinel(err); s != nil && !errors.Is(err, s) {
		return fmt.Errorf("kafka: %s: %w: %w", what, s, err)
	}
	return fmt.Errorf("kafka: %s: %w", what, err)
}

// sentinel maps err onto a bus sentinel, or nil.
func sentinel(err error) error {
	var tooLarge kafkago.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return bus.ErrTooLarge
	}
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		switch kerr {
		case kafkago.UnknownTopicOrPartition:
			return bus.ErrNotFound
		case kafkago.MessageSizeTooLarge, kafkago.RecordListTooLarge:
			return bus.ErrTooLarge
		case kafkago.TopicAuthorizationFailed, kafkago.GroupAuthorizationFailed,
			kafkago.ClusterAuthorizationFailed, kafkago.SASLAuthenticationFailed,
			kafkago.UnsupportedSASLMechanism, kafkago.IllegalSASLState,
			kafkago.TransactionalIDAuthorizationFailed:
			return bus.ErrPermission
		case kafkago.InvalidTopic, kafkago.InvalidReplicationFactor, kafkago.InvalidPartitionNumber:
			return bus.ErrInvalid
		}
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || (errors.As(err, &op) && op.Op == "dial") {
		return bus.ErrUnreachable
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return bus.ErrUnreachable
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		// The broker (or something between) closed the connection.
		return bus.ErrUnreachable
	}
	return nil
}

// isDialErr reports a connection that could not be made at all, as opposed
// to one dropped after it was made.
func isDialErr(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &op) && op.Op == "dial"
}
