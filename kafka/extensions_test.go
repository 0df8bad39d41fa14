package kafka

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/busline/bus"
)

// writeRaw writes records to topic with a plain kafka-go writer, as a
// producer that is not busline would.
func writeRaw(t *testing.T, cfg Config, topic string, kms ...kafkago.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &kafkago.Writer{Addr: kafkago.TCP(cfg.Brokers...), Topic: topic, BatchTimeout: time.Millisecond,
		BatchBytes: 4 << 20, RequiredAcks: kafkago.RequireAll, Transport: &kafkago.Transport{}}
	defer w.Close()
	if err := w.WriteMessages(ctx, kms...); err != nil {
		t.Fatal(err)
	}
}

func headers(kv ...string) []kafkago.Header {
	var hs []kafkago.Header
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, kafkago.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

// ceHeaders are the binary mode headers of a CloudEvent with the given ID.
func ceHeaders(id string, extra ...string) []kafkago.Header {
	return headers(append([]string{"ce_specversion", "1.0", "ce_id", id, "ce_source", "/sdk", "ce_type", "com.example.sdk"}, extra...)...)
}

// TestHostileRecordsDeadLetteredOnce: records carrying headers busline
// would not publish as they are, and a record whose dead letter would be
// over max_message_bytes, are each dead-lettered exactly once when their
// handler fails; the partition goes on past them.
func TestHostileRecordsDeadLetteredOnce(t *testing.T) {
	t.Parallel()
	cfg := testConfig(brokers(t))
	cfg.MaxMessageBytes = 100_000
	topic := newTopic(t, cfg, 1)
	sub := newTestSubscriber(t, cfg)

	var mu sync.Mutex
	calls := map[string]int{}
	good := make(chan struct{})
	subscribe(t, sub, topic, func(_ context.Context, m *bus.Message) error {
		if m.ID == "good" {
			close(good)
			return nil
		}
		mu.Lock()
		calls[m.ID]++
		mu.Unlock()
		return errors.New("cannot handle")
	}, bus.Group("g"), bus.Retry(bus.NoRetry()))
	var dmu sync.Mutex
	dead := map[string][]*bus.Message{}
	subscribe(t, newTestSubscriber(t, cfg), topic+bus.DeadLetterSuffix, func(_ context.Context, m *bus.Message) error {
		dmu.Lock()
		dead[m.ID] = append(dead[m.ID], m)
		dmu.Unlock()
		return nil
	}, bus.Group("dead"))

	// The near-limit record: under max_message_bytes itself, over it once
	// the dead letter adds its attributes and metadata.
	big := strings.Repeat("h", 40_000)
	body := make([]byte, cfg.MaxMessageBytes-len(big)-200)
	near := kafkago.Message{Value: body, Headers: ceHeaders("r4", "big", big)}
	if n := recordSize(&near); n > cfg.MaxMessageBytes || n < cfg.MaxMessageBytes-200 {
		t.Fatalf("near-limit record is %d bytes", n)
	}
	writeRaw(t, cfg, topic,
		kafkago.Message{Value: []byte("r1"), Headers: ceHeaders("r1", "ce_tenant", "acme", "cloudEvents_tenant", "amqp style")},
		kafkago.Message{Value: []byte("r2"), Headers: ceHeaders("r2", "x-bin", "caf\xe9", "ce_region", "\xff")},
		kafkago.Message{Value: []byte("r3"), Headers: ceHeaders("r3", "ce_", "empty name", "k\xff", "v", "content-type", "text/plain")},
		near,
		kafkago.Message{Value: []byte("ok"), Headers: ceHeaders("good")},
	)
	select {
	case <-good:
	case <-time.After(30 * time.Second):
		t.Fatal("the record after the hostile ones was not handled: the partition is stuck")
	}
	want := map[string]map[string]string{
		"r1": {"tenant": "acme", "busline-foreign-cloudEvents_tenant": "amqp style"},
		"r2": {"busline-foreign-base64-eC1iaW4": "Y2Fm6Q==", "busline-foreign-base64-Y2VfcmVnaW9u": "/w=="},
		"r3": {"busline-foreign-ce_": "empty name", "busline-foreign-base64-a_8": "dg=="},
		"r4": {},
	}
	waitFor(t, 30*time.Second, "four dead letters", func() bool { dmu.Lock(); defer dmu.Unlock(); return len(dead) == len(want) })
	// The record after them was handled: the partition moved past each
	// hostile record in order, so none of them is read again.
	mu.Lock()
	defer mu.Unlock()
	dmu.Lock()
	defer dmu.Unlock()
	for id, md := range want {
		if calls[id] != 1 || len(dead[id]) != 1 {
			t.Errorf("%s: handled %d times, dead-lettered %d times; want once each", id, calls[id], len(dead[id]))
			continue
		}
		m := dead[id][0]
		if m.Metadata[bus.MetaDeadLetterError] != "cannot handle" || m.Metadata[bus.MetaDeadLetterTopic] != topic {
			t.Errorf("%s: dead letter metadata %v", id, m.Metadata)
		}
		for k, v := range md {
			if m.Metadata[k] != v {
				t.Errorf("%s: metadata %q = %q, want %q", id, k, m.Metadata[k], v)
			}
		}
	}
	// The near-limit one went out without its own metadata, body intact.
	if m := dead["r4"]; len(m) == 1 {
		if len(m[0].Body) != len(body) || m[0].Metadata["big"] != "" {
			t.Errorf("r4 dead letter: body %d bytes, metadata %d entries", len(m[0].Body), len(m[0].Metadata))
		}
	}
}

// TestNearBrokerLimitDeadLetteredOnce: the broker, not the adapter, refuses
// the dead letter of a record near its message.max.bytes; the record is
// dead-lettered once without its own metadata, and the partition goes on.
func TestNearBrokerLimitDeadLetteredOnce(t *testing.T) {
	t.Parallel()
	const limit = 100_000
	c := newFake(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(limit)}))
	cfg := testConfig(c.ListenAddrs())
	topic := newTopic(t, cfg, 1)
	sub := newTestSubscriber(t, cfg)
	var calls atomic.Int32
	good := make(chan struct{})
	subscribe(t, sub, topic, func(_ context.Context, m *bus.Message) error {
		if m.ID == "good" {
			close(good)
			return nil
		}
		calls.Add(1)
		return errors.New("cannot handle")
	}, bus.Group("g"), bus.Retry(bus.NoRetry()))
	dead := make(chan *bus.Message, 10)
	subscribe(t, newTestSubscriber(t, cfg), topic+bus.DeadLetterSuffix, func(_ context.Context, m *bus.Message) error {
		dead <- m
		return nil
	}, bus.Group("dead"))

	big := strings.Repeat("h", 40_000)
	body := make([]byte, limit-len(big)-400)
	writeRaw(t, cfg, topic, kafkago.Message{Value: body, Headers: ceHeaders("near", "big", big)},
		kafkago.Message{Value: []byte("ok"), Headers: ceHeaders("good")})
	select {
	case <-good:
	case <-time.After(30 * time.Second):
		t.Fatal("the record after the near-limit one was not handled: the partition is stuck")
	}
	var m *bus.Message
	select {
	case m = <-dead:
	case <-time.After(30 * time.Second):
		t.Fatal("no dead letter")
	}
	// The record after them was handled: the partition moved past each
	// hostile record in order, so none of them is read again.
	if n := calls.Load(); n != 1 || len(dead) != 0 {
		t.Fatalf("handled %d times, %d more dead letters; want once each", n, len(dead))
	}
	if m.ID != "near" || len(m.Body) != len(body) || m.Metadata["big"] != "" || m.Metadata[bus.MetaDeadLetterError] != "cannot handle" {
		t.Fatalf("dead letter %s: body %d bytes, metadata %d entries", m.ID, len(m.Body), len(m.Metadata))
	}
}
