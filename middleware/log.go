package middleware

import (
	"context"
	"log/slog"
	"time"

	"github.com/busline/bus"
)

// Log writes one record per attempt to l: at Debug when the attempt
// succeeded, at Warn when it failed, with the topic, message ID, type,
// attempt number, duration and error. It does not recover panics: the
// pipeline does, and logs them itself. It panics when l is nil.
func Log(l *slog.Logger) bus.Middleware {
	if l == nil {
		panic("middleware: Log with a nil logger")
	}
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, m *bus.Message) error {
			start := time.Now()
			err := next(ctx, m)
			level, msg := slog.LevelDebug, "bus: message handled"
			if err != nil {
				level, msg = slog.LevelWarn, "bus: handler failed"
			}
			if l.Enabled(ctx, level) {
				l.LogAttrs(ctx, level, msg,
					slog.String("topic", m.Delivery.Topic), slog.String("id", m.ID), slog.String("type", m.Type),
					slog.Int("attempt", m.Delivery.Attempt), slog.Duration("duration", time.Since(start)),
					slog.Any("error", err))
			}
			return err
		}
	}
}
