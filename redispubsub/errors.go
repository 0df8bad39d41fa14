package redispubsub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/tlsconf"
)

// wrapErr turns a go-redis error into one that starts with the package
// name, names the operation, and wraps both the matching bus sentinel and
// the broker's error. Redis error replies and go-redis dial errors never
// carry the password, so the text is safe to log.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if s := sentinel(err); s != nil {
		return fmt.Errorf("redispubsub: %s: %w: %w", op, s, err)
	}
	return fmt.Errorf("redispubsub: %s: %w", op, err)
}

// connectErr explains a failed first connection: TLS handshake failures
// and a server that hangs up before answering are bus.ErrUnreachable,
// with what to check.
func connectErr(cfg Config, err error) error {
	switch {
	case tlsconf.HandshakeFailed(err):
		return fmt.Errorf("redispubsub: %w: TLS handshake with %s failed: %w", bus.ErrUnreachable, cfg.where(), err)
	case cfg.TLS && !isDial(err) && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		// A server without TLS waits for a command line that the TLS
		// client hello never ends.
		return fmt.Errorf("redispubsub: %w: no answer from %s within %v (if it does not speak TLS, use redis://): %w",
			bus.ErrUnreachable, cfg.where(), cfg.DialTimeout+cfg.ReadTimeout, err)
	case !cfg.TLS && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return fmt.Errorf("redispubsub: %w: %s closed the connection without answering (if it only speaks TLS, use rediss://): %w",
			bus.ErrUnreachable, cfg.where(), err)
	}
	return wrapErr("connect to "+cfg.where(), err)
}

func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sentinel maps a go-redis error onto a bus sentinel, or returns nil.
func sentinel(err error) error {
	if errors.Is(err, goredis.ErrClosed) {
		return bus.ErrClosed
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "ERR invalid password", "ERR Client sent AUTH"} {
			if strings.HasPrefix(msg, p) {
				return bus.ErrPermission
			}
		}
		return nil
	}
	var nerr net.Error
	var operr *net.OpError
	switch {
	case errors.As(err, &operr) && operr.Op == "dial":
		return bus.ErrUnreachable
	case errors.As(err, &nerr) && nerr.Timeout():
		return bus.ErrUnreachable
	case errors.Is(err, context.DeadlineExceeded):
		return bus.ErrUnreachable
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNREFUSED):
		// The server (or something between) closed the connection.
		return bus.ErrUnreachable
	}
	return nil
}

// isPermanent reports errors that retrying the connection cannot fix.
func isPermanent(err error) bool {
	return errors.Is(sentinel(err), bus.ErrPermission)
}
