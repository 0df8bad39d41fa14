package amqp

import (
	"fmt"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/ce"
)

// headerDeliveryCount is the header quorum queues add to redeliveries.
const headerDeliveryCount = "x-delivery-count"

// headerRepublished marks a message published again because the confirm
// of its first publish was lost: it may be a duplicate.
const headerRepublished = "busline-republished"

// CloudEvents headers left out on the wire: the native properties
// message_id, app_id, type and content_type carry them (unless too long).
const (
	headerID     = ce.AMQPPrefix + ce.AttrID
	headerSource = ce.AMQPPrefix + ce.AttrSource
	headerType   = ce.AMQPPrefix + ce.AttrType

	headerContentType = ce.AMQPPrefix + ce.AttrContentType
)

// maxShortstr is the longest value an AMQP 0-9-1 short string property
// (message_id, type, app_id, content_type) holds.
const maxShortstr = 255

// encode turns a prepared message into a persistent publishing: native
// properties for ID, Type, Source, Time and ContentType; cloudEvents_
// headers for the other attributes (time again, with its full precision)
// and for metadata named like an extension; other metadata as plain
// headers; the body untouched. An ID, Type, Source or ContentType longer
// than a short string property holds (255 bytes; say, a long ID received
// from Kafka) travels in its cloudEvents_ header instead, which decode
// reads too: a property that long would fail the publish for good.
func encode(m *bus.Message) amqp091.Publishing {
	h := make(amqp091.Table, 4+len(m.Metadata))
	ce.EncodeBinary(m, ce.AMQPPrefix, func(k, v string) {
		switch k {
		case headerID, headerSource, headerType: // native properties
			if len(v) <= maxShortstr {
				return
			}
		}
		h[k] = v
	})
	ct := m.ContentType
	if len(ct) > maxShortstr {
		h[headerContentType] = ct
		ct = ""
	}
	return amqp091.Publishing{
		Headers:      h,
		ContentType:  ct,
		DeliveryMode: amqp091.Persistent,
		MessageId:    shortstr(m.ID),
		Timestamp:    m.Time,
		Type:         shortstr(m.Type),
		AppId:        shortstr(m.Source),
		Body:         m.Body,
	}
}

// shortstr returns s when a short string property holds it, else "".
func shortstr(s string) string {
	if len(s) > maxShortstr {
		return ""
	}
	return s
}

// decode turns a delivery into a message. A delivery without our headers
// (a plain producer) decodes leniently; one that carries
// cloudEvents_specversion but is malformed returns an error wrapping
// bus.ErrMalformed, together with what could be read.
func decode(topic string, d amqp091.Delivery) (*bus.Message, error) {
	m := &bus.Message{
		ID:          d.MessageId,
		Type:        d.Type,
		Source:      d.AppId,
		Time:        d.Timestamp,
		ContentType: d.ContentType,
		Body:        d.Body,
		Delivery: bus.Delivery{
			Topic:       topic,
			Redelivered: d.Redelivered,
			Native:      d,
		},
	}
	dec := ce.NewBinaryDecoder(ce.AMQPPrefix, m)
	for k, v := range d.Headers {
		switch k {
		case headerDeliveryCount:
			m.Delivery.DeliveryCount = intValue(v)
			continue
		case headerRepublished:
			m.Delivery.Redelivered = true
			continue
		}
		dec.Header(k, headerString(v))
	}
	if err := dec.Finish(); err != nil {
		return m, fmt.Errorf("amqp: %w", err)
	}
	return m, nil
}

// headerString renders an AMQP table value as a metadata string.
func headerString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	}
	return strings.TrimSpace(fmt.Sprint(v))
}

func intValue(v any) int {
	switch v := v.(type) {
	case int64:
		return int(v)
	case int32:
		return int(v)
	case int16:
		return int(v)
	case int8:
		return int(v)
	case int:
		return v
	case uint8:
		return int(v)
	case uint16:
		return int(v)
	case uint32:
		return int(v)
	case uint64:
		return int(v)
	}
	return 0
}
