package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
)

// hostile is a received message whose metadata Publish would refuse as it
// stands: what a decoder that kept every header would have produced.
func hostile() *bus.Message {
	return &bus.Message{ID: "h1", Body: []byte("body \xff untouched"), Metadata: map[string]string{
		"ce_tenant":          "acme",
		"cloudEvents_region": "eu",
		"x-bin":              "caf\xe9",
		"":                   "empty key",
		"big1":               strings.Repeat("a", 40<<10),
		"big2":               strings.Repeat("b", 30<<10),
		"ok":                 "kept",
	}}
}

// TestDeadLetterMessageAlwaysValidates: whatever the message carries, its
// dead letter passes Validate, with its body untouched and the dead
// letter entries present; foreign entries are kept recognisably.
func TestDeadLetterMessageAlwaysValidates(t *testing.T) {
	m := hostile()
	// An error text cut in the middle of a rune must not make it invalid.
	cause := errors.New(strings.Repeat("é", maxErrorBytes))
	dl := DeadLetterMessage(m, cause, 3, "orders", "billing")
	if err := dl.Validate(); err != nil {
		t.Fatalf("dead letter does not validate: %v", err)
	}
	if string(dl.Body) != string(m.Body) {
		t.Fatalf("body changed: %q", dl.Body)
	}
	for k, want := range map[string]string{
		"ok": "kept", driver.MetaForeignPrefix + "ce_tenant": "acme", driver.MetaForeignPrefix + "cloudEvents_region": "eu",
		driver.MetaForeignPrefix: "empty key", driver.MetaForeignPrefix + "base64-eC1iaW4": "Y2Fm6Q==",
		bus.MetaDeadLetterAttempts: "3", bus.MetaDeadLetterTopic: "orders", bus.MetaDeadLetterGroup: "billing",
		driver.MetaForeignDropped: "big1",
	} {
		if dl.Metadata[k] != want {
			t.Errorf("metadata %q = %.40q, want %q", k, dl.Metadata[k], want)
		}
	}
	if !strings.HasPrefix(dl.Metadata[bus.MetaDeadLetterError], "éé") {
		t.Errorf("error %.20q", dl.Metadata[bus.MetaDeadLetterError])
	}
	if _, ok := m.Metadata["ce_tenant"]; !ok || len(m.Metadata) != 7 {
		t.Fatal("dead-lettering changed the original message")
	}
}

// TestRefusedDeadLetterIsFinal: a dead letter refused as invalid or too
// large is sent once more without the message's metadata; when that is
// refused too, the message is acked (logged at Error), never left to loop.
func TestRefusedDeadLetterIsFinal(t *testing.T) {
	for _, c := range []struct {
		name     string
		refuse   func(m *bus.Message) error
		wantOut  Outcome
		wantSent int
	}{
		{"minimal accepted", func(m *bus.Message) error {
			if _, ok := m.Metadata["ok"]; ok {
				return fmt.Errorf("kafka: publish: %w: record too big", bus.ErrTooLarge)
			}
			return nil
		}, Ack, 2},
		{"all too large", func(*bus.Message) error { return fmt.Errorf("x: %w", bus.ErrTooLarge) }, Ack, 2},
		{"all invalid", func(*bus.Message) error { return fmt.Errorf("x: %w", bus.ErrInvalid) }, Ack, 2},
		{"accepted at once", func(*bus.Message) error { return nil }, Ack, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sent []*bus.Message
			r := runner(t, func(context.Context, *bus.Message) error { return errors.New("no") },
				func(_ context.Context, _ string, m *bus.Message) error {
					sent = append(sent, m)
					return c.refuse(m)
				}, bus.Retry(bus.NoRetry()))
			r.Stop = closedChan() // a wrongly taken failure pause would not hide
			if out := r.Handle(context.Background(), hostile()); out != c.wantOut || len(sent) != c.wantSent {
				t.Fatalf("outcome %v after %d publishes, want %v after %d", out, len(sent), c.wantOut, c.wantSent)
			}
			last := sent[len(sent)-1]
			if string(last.Body) != "body \xff untouched" || last.Metadata[bus.MetaDeadLetterAttempts] != "1" || last.Metadata[bus.MetaDeadLetterTopic] != "orders" {
				t.Fatalf("last dead letter %+v", last)
			}
			if c.wantSent == 2 {
				for k := range last.Metadata {
					if !strings.HasPrefix(k, deadLetterPrefix) {
						t.Errorf("minimal dead letter carries %q", k)
					}
				}
				if n := len(last.Metadata[bus.MetaDeadLetterError]); n > minimalErrorBytes+3 {
					t.Errorf("minimal error is %d bytes", n)
				}
			}
		})
	}
}
