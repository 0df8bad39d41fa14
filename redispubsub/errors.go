package redispubsub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
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
	}
	return nil
}

// isPermanent reports errors that retrying the connection cannot fix.
func isPermanent(err error) bool {
	return errors.Is(sentinel(err), bus.ErrPermission)
}
