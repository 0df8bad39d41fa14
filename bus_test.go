package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/busline/bus"
	"github.com/busline/bus/mem"
)

func TestOpenBadURLs(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		url, want string
		is        error
	}{
		{"", "set $BUS_URL", bus.ErrInvalid},
		{"127.0.0.1:5672", "want scheme://host", bus.ErrInvalid},
		{"localhost/x", "has no scheme", bus.ErrInvalid},
		{"://nothing", "cannot parse URL", bus.ErrInvalid},
		{"nats://u:hunter2@127.0.0.1/", "forgotten import", bus.ErrInvalid},
		{"mem://?max_message_bytes=abc", "not an integer", bus.ErrInvalid},
		{"mem://?max_message_bytes=0", "at least 1", bus.ErrInvalid},
		{"mem://?max_message_bytes=1&max_message_bytes=2", "more than once", bus.ErrInvalid},
		{"mem://?password=hunter2", "unknown URL parameter", bus.ErrInvalid},
		{"mem://x/some/path", "path", bus.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			_, perr := bus.OpenPublisher(ctx, c.url)
			_, serr := bus.OpenSubscriber(ctx, c.url)
			for _, err := range []error{perr, serr} {
				require.Error(t, err)
				require.ErrorIs(t, err, c.is)
				require.Contains(t, err.Error(), c.want)
				require.NotContains(t, err.Error(), "hunter2", "password leaked")
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://guest:hunter2@127.0.0.1:5672/vh":           "amqp://guest:xxxxx@127.0.0.1:5672/vh",
		"kafka://h:1/?sasl_password=hunter2&sasl_user=bob": "kafka://h:1/?sasl_password=xxxxx&sasl_user=bob",
		"redis://:hunter2@127.0.0.1:6379/0":                "redis://:xxxxx@127.0.0.1:6379/0",
		"amqp://u:p%zz@host/":                              "amqp://xxxxx@host/",
	} {
		require.Equal(t, want, bus.RedactURL(in))
	}
}

func TestURLFromEnv(t *testing.T) {
	t.Setenv(bus.EnvURL, "")
	require.Equal(t, "mem://", bus.URLFromEnv("mem://"))
	require.Equal(t, "", bus.URLFromEnv(""))
	t.Setenv(bus.EnvURL, "redis://127.0.0.1:6379")
	require.Equal(t, "redis://127.0.0.1:6379", bus.URLFromEnv(""))
}

// A service that forgets BUS_URL gets an error naming it, not an
// in-process broker.
func TestEmptyURLNamesBUSURL(t *testing.T) {
	t.Setenv(bus.EnvURL, "")
	_, err := bus.OpenPublisher(context.Background(), bus.URLFromEnv(""))
	require.ErrorIs(t, err, bus.ErrInvalid)
	require.ErrorContains(t, err, "BUS_URL")
}

func TestRetryPolicy(t *testing.T) {
	require.NoError(t, bus.DefaultRetry().Validate())
	require.NoError(t, bus.NoRetry().Validate())
	require.NoError(t, bus.RetryForever(0, 0).Validate())
	require.ErrorIs(t, bus.RetryPolicy{}.Validate(), bus.ErrInvalid)
	require.ErrorIs(t, bus.RetryPolicy{MaxAttempts: 2, Jitter: 2}.Validate(), bus.ErrInvalid)
	require.ErrorIs(t, bus.RetryPolicy{MaxAttempts: 2, MinBackoff: -1}.Validate(), bus.ErrInvalid)

	require.False(t, bus.NoRetry().ShouldRetry(1))
	require.True(t, bus.RetryForever(0, 0).ShouldRetry(1<<30))
	require.Zero(t, bus.RetryForever(0, 0).Backoff(5))

	p := bus.RetryPolicy{MaxAttempts: 10, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Multiplier: 2}
	require.Equal(t, 100*time.Millisecond, p.Backoff(1))
	require.Equal(t, 400*time.Millisecond, p.Backoff(3))
	require.Equal(t, time.Second, p.Backoff(9))
	p.Jitter = 0.5
	for range 100 {
		d := p.Backoff(2)
		require.True(t, d >= 100*time.Millisecond && d <= 300*time.Millisecond, d)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad order")
	err := fmt.Errorf("handling: %w", bus.Permanent(base))
	require.True(t, bus.IsPermanent(err))
	require.ErrorIs(t, err, base)
	require.False(t, bus.IsPermanent(base))
	require.NoError(t, bus.Permanent(nil))
}

func TestMessageValidate(t *testing.T) {
	ok := &bus.Message{Metadata: map[string]string{"a": "ü", "Weird Key/x": ""}}
	require.NoError(t, ok.Validate())
	for name, m := range map[string]*bus.Message{
		"empty key":     {Metadata: map[string]string{"": "x"}},
		"reserved ce_":  {Metadata: map[string]string{"CE_id": "x"}},
		"reserved amqp": {Metadata: map[string]string{"cloudEvents_type": "x"}},
		"content-type":  {Metadata: map[string]string{"Content-Type": "x"}},
		"bad utf8":      {Metadata: map[string]string{"k": "\xff"}},
		"long key":      {Metadata: map[string]string{strings.Repeat("k", 256): ""}},
	} {
		require.ErrorIs(t, m.Validate(), bus.ErrInvalid, name)
	}
	big := &bus.Message{Metadata: map[string]string{"k": strings.Repeat("v", bus.MaxMetadataBytes)}}
	require.ErrorIs(t, big.Validate(), bus.ErrTooLarge)
}

func TestMessageAs(t *testing.T) {
	type native struct{ tag int }
	m := &bus.Message{Delivery: bus.Delivery{Native: native{7}}}
	var n native
	require.True(t, m.As(&n))
	require.Equal(t, 7, n.tag)
	var s string
	require.False(t, m.As(&s))
	require.False(t, m.As(nil))
	require.False(t, m.As(n))

	pub := mem.NewPublisher(mem.Config{})
	var b *mem.Broker
	require.True(t, pub.As(&b))
	require.Same(t, mem.Named(""), b)
}

func TestShutdownHelper(t *testing.T) {
	pub := mem.NewPublisher(mem.Config{})
	require.NoError(t, bus.Shutdown(context.Background(), pub))
	require.ErrorIs(t, pub.Publish(context.Background(), "t", &bus.Message{}), bus.ErrClosed)
}
