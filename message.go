package bus

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/busline/bus/internal/assign"
	"github.com/busline/bus/internal/metakey"
)

// Limits on message metadata, enforced by Message.Validate on every Publish.
const (
	// MaxMetadataBytes caps the summed length of all metadata keys and values.
	MaxMetadataBytes = 64 << 10
	// MaxMetadataKeyBytes caps the length of one metadata key.
	MaxMetadataKeyBytes = 255
)

// Defaults filled in by Publish when a message leaves them empty, because
// CloudEvents requires every event to carry a source and a type.
const (
	DefaultSource = "busline"
	DefaultType   = "busline.message"
)

// Message is the envelope busline moves. Its fields map onto CloudEvents 1.0
// attributes on every broker that has a binding (see the adapters' docs).
//
// A Message passed to Publish must not be changed, or published elsewhere,
// until Publish returns. Publish fills ID, Time, Source and Type in place
// when they are empty, so the caller can read the generated ID afterwards.
type Message struct {
	// ID identifies the message; a random UUID is generated when empty.
	// Together with Source it is the CloudEvents identity.
	ID string
	// Type is the event's contract name, such as "order.created".
	// Default: DefaultType.
	Type string
	// Source names the producer. Default: DefaultSource.
	Source string
	// Subject is the thing the event is about, such as an order number.
	Subject string
	// Time is when the event happened. Default: the time of Publish.
	Time time.Time
	// ContentType is the media type of Body, such as "application/json".
	ContentType string
	// Key is the partition or ordering key: messages with one key are
	// delivered in order where the adapter reports OrderedByKey.
	Key string
	// Metadata holds string headers that travel with the message. Keys
	// must be non-empty valid UTF-8 of at most MaxMetadataKeyBytes and
	// must not use a reserved name ("ce_...", "cloudEvents_..." in any
	// case, "content-type"); values must be valid UTF-8 (see Validate).
	//
	// A key that is a CloudEvents extension name (1 to 20 lower-case ASCII
	// letters and digits, such as "tenant") travels as an extension:
	// "ce_tenant" on Kafka, "cloudEvents_tenant" on RabbitMQ, a top-level
	// member in structured JSON. "dataschema" does too (it is a context
	// attribute with no field of its own). Other keys travel as plain
	// headers (in structured JSON, inside the "busmetadata" member), and
	// so do, on brokers with headers, "traceparent" and "tracestate", which
	// tracing instrumentations read as plain headers, and keys that name a
	// context attribute carried in a field of Message ("id", "source",
	// "type", "specversion", "time", "subject", "datacontenttype",
	// "partitionkey", and "data"): these are never confused with the
	// attributes, and are not refused.
	//
	// Receiving maps extensions back to their plain names: an extension
	// "ce_tenant" from another CloudEvents producer arrives as
	// Metadata["tenant"] (when a plain header of the same name comes too,
	// the extension wins; for the trace headers, the plain header wins).
	// CloudEvents says names SHOULD NOT exceed 20 characters, and some
	// SDKs refuse longer ones, so busline sends a longer key as a plain
	// header; it accepts a longer extension from other producers all the
	// same, under its plain name (a plain header of that name wins).
	//
	// A received message always passes Validate, so that a handler can
	// publish it again unchanged (a forwarder) and it can always be
	// dead-lettered. A header that cannot be metadata as it is arrives
	// under a key that starts with "busline-foreign-": that prefix + its
	// name when it has a reserved or empty name (a "ce_x" header on RabbitMQ, a
	// "cloudEvents_x" one on Kafka, an unprefixed header that lost to an
	// extension of the same name); "busline-foreign-base64-" + its name in
	// unpadded URL-safe base64, with its value in standard base64, when its
	// name or value is not valid UTF-8. Keys are cut to
	// MaxMetadataKeyBytes. When received metadata adds up to more than
	// MaxMetadataBytes, the largest entries are dropped and their names
	// listed, comma-separated, under "busline-foreign-dropped".
	Metadata map[string]string
	// Body is the payload, passed through untouched.
	Body []byte

	// Delivery describes how a received message arrived. Subscribers fill
	// it; Publish ignores it.
	Delivery Delivery
}

// Delivery describes one delivery of a received message.
type Delivery struct {
	// Topic is the topic (queue, channel) the message was received from.
	Topic string
	// Attempt counts handler calls for this message in this process,
	// starting at 1.
	Attempt int
	// Redelivered is true when the broker says it delivered this message
	// before, to this or another consumer (a crash, a lost connection).
	Redelivered bool
	// DeliveryCount is the broker's own count of deliveries where it keeps
	// one (RabbitMQ quorum queues), else 0.
	DeliveryCount int
	// Native is the broker client's own value for the delivery, such as an
	// amqp091.Delivery or a kafkago.Message. Prefer Message.As.
	Native any
}

// NewMessage returns a message with the given type and body and a fresh ID.
func NewMessage(typ string, body []byte) *Message {
	return &Message{ID: uuid.NewString(), Type: typ, Body: body}
}

// As sets target, a non-nil pointer, to the broker client's native value
// for this delivery when the types match, and reports whether it did. Each
// adapter's package doc lists the types it supports.
func (m *Message) As(target any) bool { return assign.To(m.Delivery.Native, target) }

// Validate reports a message that cannot be published: invalid or reserved
// metadata keys, non-UTF-8 metadata, or metadata over MaxMetadataBytes.
// It does not check Body size; each adapter knows its broker's limit.
func (m *Message) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil message", ErrInvalid)
	}
	total := 0
	for k, v := range m.Metadata {
		switch {
		case k == "":
			return fmt.Errorf("%w: empty metadata key", ErrInvalid)
		case len(k) > MaxMetadataKeyBytes:
			return fmt.Errorf("%w: metadata key %.32q... is %d bytes, over %d", ErrInvalid, k, len(k), MaxMetadataKeyBytes)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return fmt.Errorf("%w: metadata %q is not valid UTF-8", ErrInvalid, k)
		case metakey.Reserved(k):
			return fmt.Errorf("%w: metadata key %q uses a reserved prefix", ErrInvalid, k)
		}
		total += len(k) + len(v)
	}
	if total > MaxMetadataBytes {
		return fmt.Errorf("%w: metadata is %d bytes, over %d", ErrTooLarge, total, MaxMetadataBytes)
	}
	return nil
}

// Clone returns a deep copy of m (Body and Metadata are copied; the
// Delivery is reset).
func (m *Message) Clone() *Message {
	c := *m
	c.Delivery = Delivery{}
	if m.Body != nil {
		c.Body = append([]byte(nil), m.Body...)
	}
	if m.Metadata != nil {
		c.Metadata = make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			c.Metadata[k] = v
		}
	}
	return &c
}
