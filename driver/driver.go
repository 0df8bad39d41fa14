package driver

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/assign"
	"github.com/busline/bus/internal/metakey"
	"github.com/busline/bus/internal/registry"
	"github.com/busline/bus/internal/subcfg"
)

// Opener opens publishers and subscribers for one URL scheme. Adapters
// register theirs with Register from an init function.
type Opener interface {
	// OpenPublisher builds a publisher from u, whose scheme is one the
	// Opener was registered under. On error it returns a nil Publisher.
	OpenPublisher(ctx context.Context, u *url.URL) (bus.Publisher, error)
	// OpenSubscriber is OpenPublisher for subscribers.
	OpenSubscriber(ctx context.Context, u *url.URL) (bus.Subscriber, error)
}

// Register makes o open the URLs of scheme for bus.OpenPublisher and
// bus.OpenSubscriber. It panics when the scheme is registered twice or o is
// nil, as both are programming errors.
func Register(scheme string, o Opener) {
	if o == nil {
		panic("driver: Register opener is nil")
	}
	if !registry.Add(scheme, o) {
		panic("driver: Register called twice for scheme " + scheme)
	}
}

// SubscribeConfig is the resolved form of a Subscribe call's options.
// Adapters get it from NewSubscribeConfig.
type SubscribeConfig struct {
	// Group names the consumer group; empty means broadcast.
	Group string
	// Concurrency is how many messages may be in the handler at once.
	// Default: bus.DefaultConcurrency.
	Concurrency int
	// Ready is called once, when the subscription is live. It may be nil.
	Ready func()
	// Start is where a new group starts reading. Default: bus.StartEarliest.
	Start bus.StartPosition
	// Retry is the policy for failed handlers. Default: bus.DefaultRetry().
	Retry bus.RetryPolicy
	// DeadLetter is the topic failed and poison messages go to.
	// Default: the topic name followed by bus.DeadLetterSuffix.
	DeadLetter string
	// Logger receives the subscription's logs. Default: the logger an
	// adapter passes ahead of the caller's options, else
	// bus.DiscardLogger(). Never nil.
	Logger *slog.Logger
	// Middleware wraps the handler, the first outermost (see bus.Use).
	Middleware []bus.Middleware
}

// options is the value bus's SubscribeOptions set.
type options = subcfg.Options[bus.StartPosition, bus.RetryPolicy, bus.Middleware]

// NewSubscribeConfig checks a Subscribe call's arguments and resolves its
// options, filling the documented defaults. It is what every adapter's
// Subscribe runs first; the error wraps bus.ErrInvalid. An adapter passes
// bus.Logger(its own logger) ahead of the caller's options, so that a
// caller's bus.Logger wins.
func NewSubscribeConfig(topic string, h bus.Handler, opts ...bus.SubscribeOption) (SubscribeConfig, error) {
	o := options{Concurrency: bus.DefaultConcurrency, Retry: bus.DefaultRetry()}
	if err := ValidateTopic(topic); err != nil {
		return SubscribeConfig{}, err
	}
	if h == nil {
		return SubscribeConfig{}, fmt.Errorf("%w: nil handler", bus.ErrInvalid)
	}
	for _, opt := range opts {
		opt(&o)
	}
	cfg := SubscribeConfig{
		Group:       o.Group,
		Concurrency: o.Concurrency,
		Ready:       o.Ready,
		Start:       o.Start,
		Retry:       o.Retry,
		DeadLetter:  o.DeadLetter,
		Logger:      o.Logger,
		Middleware:  o.Middleware,
	}
	for i, mw := range cfg.Middleware {
		if mw == nil {
			return cfg, fmt.Errorf("%w: middleware %d is nil", bus.ErrInvalid, i)
		}
	}
	if cfg.Concurrency < 1 {
		return cfg, fmt.Errorf("%w: concurrency must be >= 1, got %d", bus.ErrInvalid, cfg.Concurrency)
	}
	if err := cfg.Retry.Validate(); err != nil {
		return cfg, err
	}
	if cfg.Start != bus.StartEarliest && cfg.Start != bus.StartLatest {
		return cfg, fmt.Errorf("%w: unknown start position %d", bus.ErrInvalid, cfg.Start)
	}
	if cfg.DeadLetter == "" {
		cfg.DeadLetter = topic + bus.DeadLetterSuffix
	}
	if cfg.DeadLetter == topic {
		return cfg, fmt.Errorf("%w: dead letter topic is the topic itself", bus.ErrInvalid)
	}
	if cfg.Logger == nil {
		cfg.Logger = bus.DiscardLogger()
	}
	return cfg, nil
}

// Wrap returns h wrapped in the config's middleware, the first outermost;
// a middleware that returns a nil Handler is an error wrapping
// bus.ErrInvalid. Adapters call it once per subscription, on the handler
// whose result settles the message (inside their retry loop).
func (c SubscribeConfig) Wrap(h bus.Handler) (bus.Handler, error) {
	for i := len(c.Middleware) - 1; i >= 0; i-- {
		if h = c.Middleware[i](h); h == nil {
			return nil, fmt.Errorf("%w: middleware %d returned a nil handler", bus.ErrInvalid, i)
		}
	}
	return h, nil
}

// Metadata keys of received messages that keep what could not be metadata
// as it was; see bus.Message.Metadata. An adapter's decoder writes them.
const (
	// MetaForeignPrefix starts the key of a received header that could not
	// be metadata under its own name: one with a reserved name (a
	// CloudEvents prefix busline does not decode on this broker, such as
	// "ce_x" on RabbitMQ), an empty or over-long name, or a key or value
	// that is not valid UTF-8.
	MetaForeignPrefix = "busline-foreign-"
	// MetaForeignDropped lists, comma-separated, the metadata keys dropped
	// because the message's metadata added up to more than
	// bus.MaxMetadataBytes (the list is cut at 1 KiB).
	MetaForeignDropped = "busline-foreign-dropped"
)

// PreparePublish is what every adapter's Publish runs first: it checks the
// topic and each message (bus.Message.Validate, and Body against maxBody
// when maxBody > 0) and fills the defaults bus.Message documents (ID, Time,
// Source, Type) in place. The error names the offending message by index.
func PreparePublish(topic string, msgs []*bus.Message, maxBody int) error {
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	now := time.Now()
	for i, m := range msgs {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		if maxBody > 0 && len(m.Body) > maxBody {
			return fmt.Errorf("%w: message %d body is %d bytes, over the limit of %d", bus.ErrTooLarge, i, len(m.Body), maxBody)
		}
		if m.ID == "" {
			m.ID = uuid.NewString()
		}
		if m.Time.IsZero() {
			m.Time = now
		}
		if m.Source == "" {
			m.Source = bus.DefaultSource
		}
		if m.Type == "" {
			m.Type = bus.DefaultType
		}
	}
	return nil
}

// ValidateTopic reports an empty or non-UTF-8 topic name; the error wraps
// bus.ErrInvalid.
func ValidateTopic(topic string) error {
	if topic == "" {
		return fmt.Errorf("%w: empty topic", bus.ErrInvalid)
	}
	if !utf8.ValidString(topic) {
		return fmt.Errorf("%w: topic is not valid UTF-8", bus.ErrInvalid)
	}
	return nil
}

// IsReservedKey reports whether a metadata key collides with the headers
// busline itself writes on the wire: it starts with "ce_" or
// "cloudEvents_", or is "content-type", in any case. bus.Message.Validate
// refuses such keys; a decoder moves a received one under
// MetaForeignPrefix.
func IsReservedKey(k string) bool { return metakey.Reserved(k) }

// AsValue is the As helper adapters use for their own types, the rule
// bus.Message.As follows: it sets target to v when target is a non-nil
// pointer to a type v is assignable to, and reports whether it did.
func AsValue(v, target any) bool { return assign.To(v, target) }
