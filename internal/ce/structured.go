package ce

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/busline/bus"
)

// metaExt is the extension attribute that carries metadata whose keys are
// not valid CloudEvents extension names, as a JSON-encoded string map.
const metaExt = "busmetadata"

// isJSON reports whether a content type is JSON, so Body can be embedded as
// the data member instead of base64.
func isJSON(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(strings.ToLower(ct))
	return ct == "application/json" || ct == "text/json" || strings.HasSuffix(ct, "+json")
}

// isText reports whether a content type is text, so a UTF-8 Body can be
// embedded as a JSON string that plain JSON readers can use.
func isText(ct string) bool {
	return strings.HasPrefix(strings.TrimSpace(strings.ToLower(ct)), "text/")
}

// MarshalStructured encodes m as a structured mode CloudEvents JSON
// document. Body is embedded as "data" when ContentType is JSON and Body is
// valid JSON, as a "data" string when ContentType is text/* and Body is
// valid UTF-8, and as "data_base64" otherwise, so any bytes round-trip.
// Metadata whose key is an extension name (see IsExtensionName; the trace
// context headers included, since this mode has no plain headers) is a
// top-level member; the rest travels as one JSON-encoded string member,
// busmetadata.
func MarshalStructured(m *bus.Message) []byte {
	// Room for everything unless strings need escaping, so that the
	// buffer is allocated once.
	size := 192 + len(m.ID) + len(m.Source) + len(m.Type) + len(m.Subject) + len(m.ContentType) + len(m.Key) +
		base64.StdEncoding.EncodedLen(len(m.Body))
	for k, v := range m.Metadata {
		size += len(k) + len(v) + 8
	}
	b := make([]byte, 0, size)
	b = append(b, `{"specversion":"1.0","id":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"source":`...)
	b = appendString(b, m.Source)
	b = append(b, `,"type":`...)
	b = appendString(b, m.Type)
	if !m.Time.IsZero() {
		b = append(b, `,"time":"`...)
		b = m.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if m.Subject != "" {
		b = append(b, `,"subject":`...)
		b = appendString(b, m.Subject)
	}
	if m.ContentType != "" {
		b = append(b, `,"datacontenttype":`...)
		b = appendString(b, m.ContentType)
	}
	if m.Key != "" {
		b = append(b, `,"partitionkey":`...)
		b = appendString(b, m.Key)
	}
	var other map[string]string
	for k, v := range m.Metadata {
		if isStructuredExtension(k) {
			b = append(b, ',')
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, v)
			continue
		}
		if other == nil {
			other = make(map[string]string)
		}
		other[k] = v
	}
	if other != nil {
		enc, _ := json.Marshal(other) // a map of strings always marshals
		b = append(b, `,"`+metaExt+`":`...)
		b = appendString(b, string(enc))
	}
	if m.Body != nil {
		switch {
		case isJSON(m.ContentType) && json.Valid(m.Body):
			b = append(b, `,"data":`...)
			b = append(b, m.Body...)
		case isText(m.ContentType) && utf8.Valid(m.Body):
			b = append(b, `,"data":`...)
			b = appendString(b, string(m.Body))
		default:
			b = append(b, `,"data_base64":"`...)
			b = base64.StdEncoding.AppendEncode(b, m.Body)
			b = append(b, '"')
		}
	}
	return append(b, '}')
}

// UnmarshalStructured decodes data into m. Data that is not a JSON object
// with a specversion member is a plain payload: m.Body is data itself and
// m.ID is generated. A document with specversion must be a valid event,
// else the error wraps bus.ErrMalformed. m.Body may share memory with data.
// Members that are not context attributes become metadata under their own
// names; the decoded Metadata always passes bus.Message.Validate (see
// SafeMetadata).
func UnmarshalStructured(data []byte, m *bus.Message) error {
	if !looksStructured(data) {
		m.Body = data
		m.ID = uuid.NewString()
		return nil
	}
	var (
		errs             []string
		version, timeStr string
		metaStr          string
		dataRaw          []byte
		hasData, hasB64  bool
		dataEsc          bool
		b64              []byte
	)
	// str decodes a string member; raw is its value as scanned, esc
	// whether it holds escapes.
	str := func(name string, raw []byte, esc bool) string {
		if len(raw) == 0 || raw[0] != '"' {
			errs = append(errs, name+" is not a string")
			return ""
		}
		v, ok := unquote(raw[1:len(raw)-1], esc)
		if !ok {
			errs = append(errs, name+" is not a valid string")
		}
		return v
	}
	sc := scanner{d: data}
	err := sc.members(func(keyRaw, raw []byte, keyEsc, esc bool) error {
		key, ok := unquote(keyRaw, keyEsc)
		if !ok {
			return errSyntax
		}
		switch key {
		case AttrSpecVersion:
			version = str(key, raw, esc)
		case AttrID:
			m.ID = str(key, raw, esc)
		case AttrSource:
			m.Source = str(key, raw, esc)
		case AttrType:
			m.Type = str(key, raw, esc)
		case AttrSubject:
			m.Subject = str(key, raw, esc)
		case AttrContentType:
			m.ContentType = str(key, raw, esc)
		case AttrPartitionKey:
			m.Key = str(key, raw, esc)
		case AttrTime:
			timeStr = str(key, raw, esc)
		case metaExt:
			metaStr = str(key, raw, esc)
		case "data_base64":
			hasB64 = true
			if raw[0] == '"' && !esc {
				// Decoded straight from the input: base64 rejects
				// whatever unquoting would have changed.
				b64 = raw[1 : len(raw)-1]
			} else {
				b64 = []byte(str(key, raw, esc))
			}
		case "data":
			dataRaw, dataEsc, hasData = raw, esc, true
		default:
			v := string(raw) // numbers, booleans and nested values keep their JSON text
			if raw[0] == '"' {
				v = str(key, raw, esc)
			}
			if m.Metadata == nil {
				m.Metadata = make(map[string]string)
			}
			m.Metadata[key] = v
		}
		return nil
	})
	if err != nil {
		if m.Metadata != nil {
			m.Metadata = SafeMetadata(m.Metadata, bus.MaxMetadataBytes, "")
		}
		return fmt.Errorf("ce: %w: structured event is not valid JSON", bus.ErrMalformed)
	}
	if timeStr != "" {
		t, err := time.Parse(time.RFC3339Nano, timeStr)
		if err != nil {
			errs = append(errs, fmt.Sprintf("time %q is not RFC 3339", timeStr))
		}
		m.Time = t
	}
	if metaStr != "" {
		var extra map[string]string
		if err := json.Unmarshal([]byte(metaStr), &extra); err != nil {
			errs = append(errs, metaExt+" is not a JSON object of strings")
		}
		if m.Metadata == nil {
			m.Metadata = extra
		} else {
			for k, v := range extra {
				m.Metadata[k] = v
			}
		}
	}
	if hasB64 {
		body := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
		n, err := base64.StdEncoding.Decode(body, b64)
		if err != nil {
			errs = append(errs, "data_base64 is not base64")
		}
		m.Body = body[:n]
	}
	if hasData {
		if !isJSON(m.ContentType) && dataRaw[0] == '"' {
			m.Body = []byte(str("data", dataRaw, dataEsc)) // text data from another producer
		} else {
			m.Body = dataRaw
		}
	}
	if m.Metadata != nil {
		m.Metadata = SafeMetadata(m.Metadata, bus.MaxMetadataBytes, "")
	}
	errs = append(errs, checkEvent(version, m)...)
	if len(errs) > 0 {
		return fmt.Errorf("ce: %w: %s", bus.ErrMalformed, strings.Join(errs, "; "))
	}
	return nil
}

// looksStructured reports whether data is a JSON object that mentions
// specversion: the cheap test that sorts plain payloads from ours.
func looksStructured(data []byte) bool {
	d := bytes.TrimLeft(data, " \t\r\n")
	return len(d) > 0 && d[0] == '{' && bytes.Contains(d, []byte(`"specversion"`))
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
