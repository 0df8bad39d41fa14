package driver_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
)

func TestPreparePublish(t *testing.T) {
	require.ErrorIs(t, driver.PreparePublish("t", []*bus.Message{{Body: make([]byte, 11)}}, 10), bus.ErrTooLarge)
	require.ErrorIs(t, driver.PreparePublish("", nil, 0), bus.ErrInvalid)
	require.ErrorIs(t, driver.PreparePublish("\xff", nil, 0), bus.ErrInvalid)
	require.ErrorIs(t, driver.PreparePublish("t", []*bus.Message{{}, {Metadata: map[string]string{"ce_id": "x"}}}, 0), bus.ErrInvalid)

	m := &bus.Message{}
	require.NoError(t, driver.PreparePublish("t", []*bus.Message{m}, 0))
	require.NotEmpty(t, m.ID)
	require.False(t, m.Time.IsZero())
	require.Equal(t, bus.DefaultSource, m.Source)
	require.Equal(t, bus.DefaultType, m.Type)
}

func TestSubscribeConfigDefaults(t *testing.T) {
	h := func(context.Context, *bus.Message) error { return nil }
	cfg, err := driver.NewSubscribeConfig("orders", h)
	require.NoError(t, err)
	require.Equal(t, bus.DefaultConcurrency, cfg.Concurrency)
	require.Equal(t, bus.DefaultRetry(), cfg.Retry)
	require.Equal(t, "orders"+bus.DeadLetterSuffix, cfg.DeadLetter)
	require.Equal(t, bus.StartEarliest, cfg.Start)
	require.Same(t, bus.DiscardLogger(), cfg.Logger)

	for name, opts := range map[string][]bus.SubscribeOption{
		"concurrency":      {bus.Concurrency(-1)},
		"start":            {bus.StartFrom(7)},
		"retry":            {bus.Retry(bus.RetryPolicy{MaxAttempts: -2})},
		"dead letter loop": {bus.DeadLetter("orders")},
		"nil middleware":   {bus.Use(nil)},
	} {
		_, err := driver.NewSubscribeConfig("orders", h, opts...)
		require.ErrorIs(t, err, bus.ErrInvalid, name)
	}
	_, err = driver.NewSubscribeConfig("", h)
	require.ErrorIs(t, err, bus.ErrInvalid)
	_, err = driver.NewSubscribeConfig("orders", nil)
	require.ErrorIs(t, err, bus.ErrInvalid)
}

// Every option of package bus lands on its field, the last one given
// winning.
func TestSubscribeConfigOptions(t *testing.T) {
	h := func(context.Context, *bus.Message) error { return nil }
	adapterLog, callerLog := slog.New(slog.DiscardHandler), slog.New(slog.DiscardHandler)
	ready := 0
	var order []string
	mw := func(name string) bus.Middleware {
		return func(next bus.Handler) bus.Handler {
			return func(ctx context.Context, m *bus.Message) error {
				order = append(order, name)
				return next(ctx, m)
			}
		}
	}
	cfg, err := driver.NewSubscribeConfig("orders", h,
		bus.Logger(adapterLog), bus.Group("billing"), bus.Concurrency(4),
		bus.OnReady(func() { ready++ }), bus.StartFrom(bus.StartLatest),
		bus.Retry(bus.NoRetry()), bus.DeadLetter("parked"), bus.Logger(callerLog),
		bus.Use(mw("a")), bus.Use(mw("b")))
	require.NoError(t, err)
	require.Equal(t, "billing", cfg.Group)
	require.Equal(t, 4, cfg.Concurrency)
	cfg.Ready()
	require.Equal(t, 1, ready)
	require.Equal(t, bus.StartLatest, cfg.Start)
	require.Equal(t, bus.NoRetry(), cfg.Retry)
	require.Equal(t, "parked", cfg.DeadLetter)
	require.Same(t, callerLog, cfg.Logger)

	wrapped, err := cfg.Wrap(h)
	require.NoError(t, err)
	require.NoError(t, wrapped(context.Background(), &bus.Message{}))
	require.Equal(t, []string{"a", "b"}, order)

	cfg, err = driver.NewSubscribeConfig("orders", h, bus.Use(func(bus.Handler) bus.Handler { return nil }))
	require.NoError(t, err)
	_, err = cfg.Wrap(h)
	require.ErrorIs(t, err, bus.ErrInvalid)
}

type fakeOpener struct{ pub bus.Publisher }

func (o fakeOpener) OpenPublisher(context.Context, *url.URL) (bus.Publisher, error) {
	return o.pub, nil
}

func (o fakeOpener) OpenSubscriber(context.Context, *url.URL) (bus.Subscriber, error) {
	return nil, errors.New("fake: no subscriber")
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, string, ...*bus.Message) error { return nil }
func (nopPublisher) Close() error                                           { return nil }

// A scheme registered with driver.Register is what bus opens and lists.
func TestRegister(t *testing.T) {
	scheme := "drivertest" + time.Now().Format("150405.000000000")
	driver.Register(scheme, fakeOpener{pub: nopPublisher{}})
	require.True(t, slices.Contains(bus.Schemes(), scheme))

	pub, err := bus.OpenPublisher(context.Background(), scheme+"://x")
	require.NoError(t, err)
	require.Equal(t, nopPublisher{}, pub)
	_, err = bus.OpenSubscriber(context.Background(), scheme+"://x")
	require.EqualError(t, err, "fake: no subscriber")

	require.PanicsWithValue(t, "driver: Register called twice for scheme "+scheme, func() {
		driver.Register(scheme, fakeOpener{})
	})
	require.Panics(t, func() { driver.Register("drivertest-nil", nil) })
}

func TestAsValue(t *testing.T) {
	var s string
	require.True(t, driver.AsValue("x", &s))
	require.Equal(t, "x", s)
	var n int
	require.False(t, driver.AsValue("x", &n))
	require.False(t, driver.AsValue("x", nil))
	require.False(t, driver.AsValue(nil, &s))
}

func TestIsReservedKey(t *testing.T) {
	for _, k := range []string{"ce_id", "CE_x", "cloudEvents_type", "CLOUDEVENTS_a", "Content-Type"} {
		require.True(t, driver.IsReservedKey(k), k)
	}
	for _, k := range []string{"tenant", "ce", "content-typed", "traceparent"} {
		require.False(t, driver.IsReservedKey(k), k)
	}
}
