// Package ce maps the bus.Message envelope onto CloudEvents 1.0: binary
// content mode (one header per attribute, body untouched) for brokers with
// headers, and structured content mode (one JSON document) for brokers
// without. Decoding is lenient with plain payloads, which carry none of the
// attributes and are delivered as they are, and strict with payloads that
// claim to be CloudEvents (they carry specversion) but are malformed: those
// return an error wrapping bus.ErrMalformed, so that the subscriber can
// dead-letter them.
package ce

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/busline/bus"
)

// SpecVersion is the CloudEvents version written and accepted.
const SpecVersion = "1.0"

// Attribute names, without any binding prefix.
const (
	AttrID           = "id"
	AttrSource       = "source"
	AttrType         = "type"
	AttrSpecVersion  = "specversion"
	AttrTime         = "time"
	AttrSubject      = "subject"
	AttrContentType  = "datacontenttype"
	AttrPartitionKey = "partitionkey"
)

// Binding prefixes for binary mode headers.
const (
	KafkaPrefix = "ce_"
	AMQPPrefix  = "cloudEvents_"
)

// ContentTypeHeader is the header that carries ContentType in Kafka's
// binary mode.
const ContentTypeHeader = "content-type"

// StructuredContentType is the media type of structured mode documents.
const StructuredContentType = "application/cloudevents+json"

// headerNames are the attribute header names of one binding prefix,
// computed once so that encoding does not concatenate strings per message.
type headerNames struct {
	specVersion, id, source, typ, time, subject, partitionKey string
}

func namesFor(prefix string) *headerNames {
	return &headerNames{
		specVersion: prefix + AttrSpecVersion, id: prefix + AttrID, source: prefix + AttrSource,
		typ: prefix + AttrType, time: prefix + AttrTime, subject: prefix + AttrSubject,
		partitionKey: prefix + AttrPartitionKey,
	}
}

var (
	kafkaNames = namesFor(KafkaPrefix)
	amqpNames  = namesFor(AMQPPrefix)
)

// EncodeBinary calls set once for each attribute header of m, named with
// prefix ("ce_id", ...), and once for each metadata entry: under prefix+key
// when the key travels as an extension (IsBinaryExtension), else under the
// key itself, a plain header. ContentType is not included: each binding
// carries it natively.
func EncodeBinary(m *bus.Message, prefix string, set func(key, value string)) {
	var n *headerNames
	switch prefix {
	case KafkaPrefix:
		n = kafkaNames
	case AMQPPrefix:
		n = amqpNames
	default:
		n = namesFor(prefix)
	}
	set(n.specVersion, SpecVersion)
	set(n.id, m.ID)
	set(n.source, m.Source)
	set(n.typ, m.Type)
	if !m.Time.IsZero() {
		set(n.time, m.Time.UTC().Format(time.RFC3339Nano))
	}
	if m.Subject != "" {
		set(n.subject, m.Subject)
	}
	if m.Key != "" {
		set(n.partitionKey, m.Key)
	}
	for k, v := range m.Metadata {
		if IsBinaryExtension(k) {
			set(prefix+k, v)
		} else {
			set(k, v)
		}
	}
}

// BinaryDecoder builds a message from binary mode headers: call Header for
// each header, then Finish. The zero value is not usable; use
// NewBinaryDecoder.
type BinaryDecoder struct {
	prefix  string
	m       *bus.Message
	version string
	hasVer  bool
	timeStr string
	errs    []string
	// weak lists the metadata keys set by a header that gives way to
	// another of the same name: an unprefixed header named like an
	// extension gives way to the extension header; a prefixed trace
	// header to the plain one. The loser is kept as foreign metadata.
	weak map[string]bool

	// FallbackID, when set, is the ID a message without one gets instead
	// of a random UUID (a broker position that names the record for good).
	FallbackID string
}

// NewBinaryDecoder decodes headers with the given prefix into m; m.Body
// must be set by the caller.
func NewBinaryDecoder(prefix string, m *bus.Message) *BinaryDecoder {
	return &BinaryDecoder{prefix: prefix, m: m}
}

// Header takes one header. Prefixed headers are CloudEvents attributes
// (matched case-insensitively, since brokers and clients differ); the
// content-type header sets ContentType; anything else is metadata. An
// extension header (prefix + a name of lower-case letters and digits, of
// any length) becomes metadata under the plain name ("ce_tenant" gives
// Metadata["tenant"]), the inverse of EncodeBinary. A header that cannot be metadata as it is (another
// prefixed or reserved name, a key or value that is not UTF-8) is kept
// under a driver.MetaForeignPrefix key, so that the decoded message can
// always be published again.
func (d *BinaryDecoder) Header(key, value string) {
	if len(key) > len(d.prefix) && strings.EqualFold(key[:len(d.prefix)], d.prefix) {
		switch name := strings.ToLower(key[len(d.prefix):]); name {
		case AttrSpecVersion:
			d.version, d.hasVer = value, true
		case AttrID:
			d.m.ID = value
		case AttrSource:
			d.m.Source = value
		case AttrType:
			d.m.Type = value
		case AttrTime:
			d.timeStr = value
		case AttrSubject:
			d.m.Subject = value
		case AttrPartitionKey:
			d.m.Key = value
		case AttrContentType:
			d.m.ContentType = value
		default:
			ext, plainWins := receivedExtension(name)
			switch {
			case ext && !plainWins && utf8.ValidString(value):
				if old, ok := d.m.Metadata[name]; ok && d.weak[name] {
					// A plain header of the same name came first.
					d.foreign(name, old)
					delete(d.weak, name)
				}
				d.meta(name, value)
			case ext && utf8.ValidString(value):
				// The plain header of this name wins; this one is
				// kept only when there is none.
				if _, ok := d.m.Metadata[name]; ok {
					d.foreign(key, value)
				} else {
					d.meta(name, value)
					d.markWeak(name)
				}
			default:
				d.foreign(key, value)
			}
		}
		return
	}
	if strings.EqualFold(key, ContentTypeHeader) {
		d.m.ContentType = value
		return
	}
	ext, plainWins := receivedExtension(key)
	switch {
	case !publishable(key, value):
		d.foreign(key, value)
	case ext && !plainWins:
		// Named like an extension but sent without the prefix: the
		// extension header of that name, sent before or after, wins.
		if _, ok := d.m.Metadata[key]; ok && !d.weak[key] {
			d.foreign(key, value)
			return
		}
		d.meta(key, value)
		d.markWeak(key)
	case ext:
		if old, ok := d.m.Metadata[key]; ok && d.weak[key] {
			d.foreign(d.prefix+key, old) // the prefixed one gives way
		}
		d.meta(key, value)
		delete(d.weak, key)
	default:
		d.meta(key, value)
	}
}

// receivedExtension reports whether a received prefixed header named
// prefix + name maps to Metadata[name], and if so whether a plain header
// of the same name wins over it: for the trace context headers, which
// busline sends plain, and for names over MaxExtensionNameBytes, which
// busline accepts from other producers but sends on as plain headers.
func receivedExtension(name string) (ext, plainWins bool) {
	if name == "" || len(name) > bus.MaxMetadataKeyBytes || fieldAttribute(name) {
		return false, false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false, false
		}
	}
	return true, traceHeader(name) || len(name) > MaxExtensionNameBytes
}

func (d *BinaryDecoder) markWeak(key string) {
	if d.weak == nil {
		d.weak = make(map[string]bool)
	}
	d.weak[key] = true
}

// foreign keeps a header that cannot be metadata as it is.
func (d *BinaryDecoder) foreign(key, value string) {
	k, v := foreign(key, value)
	d.meta(k, v)
}

func (d *BinaryDecoder) meta(key, value string) {
	if d.m.Metadata == nil {
		d.m.Metadata = make(map[string]string)
	}
	d.m.Metadata[key] = value
}

// Finish validates what was decoded. A message without specversion is a
// plain message: it gets a generated ID when it has none. One with
// specversion must be a well-formed CloudEvent, else the error wraps
// bus.ErrMalformed.
//
// Whatever the headers were, the decoded Metadata passes
// bus.Message.Validate: when it adds up to more than bus.MaxMetadataBytes,
// the largest entries are dropped and listed under driver.MetaForeignDropped.
func (d *BinaryDecoder) Finish() error {
	if d.m.Metadata != nil {
		d.m.Metadata = SafeMetadata(d.m.Metadata, bus.MaxMetadataBytes, "")
	}
	if d.timeStr != "" {
		t, err := time.Parse(time.RFC3339Nano, d.timeStr)
		if err != nil {
			d.errs = append(d.errs, fmt.Sprintf("time %q is not RFC 3339", d.timeStr))
		} else {
			d.m.Time = t
		}
	}
	if d.hasVer {
		d.errs = append(d.errs, checkEvent(d.version, d.m)...)
		if len(d.errs) > 0 {
			return fmt.Errorf("ce: %w: %s", bus.ErrMalformed, strings.Join(d.errs, "; "))
		}
	}
	if d.m.ID == "" {
		d.m.ID = d.FallbackID
	}
	if d.m.ID == "" {
		d.m.ID = uuid.NewString()
	}
	return nil
}

// checkEvent lists what makes a message claiming CloudEvents invalid.
func checkEvent(version string, m *bus.Message) []string {
	var errs []string
	if version != SpecVersion {
		errs = append(errs, fmt.Sprintf("specversion %q is not %q", version, SpecVersion))
	}
	if m.ID == "" {
		errs = append(errs, "id is empty")
	}
	if m.Source == "" {
		errs = append(errs, "source is empty")
	}
	if m.Type == "" {
		errs = append(errs, "type is empty")
	}
	return errs
}
