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

// isExtName reports whether k is a valid CloudEvents extension attribute
// name (lowercase letters and digits, at most 20 of them) that does not
// clash with a context attribute or data member.
func isExtName(k string) bool {
	if k == "" || len(k) > 20 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	switch k {
	case AttrID, AttrSource, AttrType, AttrSpecVersion, AttrTime, AttrSubject, AttrContentType,
		AttrPartitionKey, "dataschema", "data", "data_base64", metaExt:
		return false
	}
	return true
}

// isJSON reports whether a content type is JSON, so Body can be embedded as
// the data member instead of base64.
func isJSON(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(strings.ToLower(ct))
	return ct == "application/json" || ct == "text/json" || strings.HasSuffix(ct, "+json")
}

// MarshalStructured encodes m as a structured mode CloudEvents JSON
// document. Body is embedded as "data" when ContentType is JSON and Body is
// valid JSON, and as "data_base64" otherwise, so any bytes round-trip.
func MarshalStructured(m *bus.Message) []byte {
	b := make([]byte, 0, 160+len(m.Body)*4/3)
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
		if isExtName(k) {
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
		if isJSON(m.ContentType) && json.Valid(m.Body) {
			b = append(b, `,"data":`...)
			b = append(b, m.Body...)
		} else {
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
// else the error wraps bus.ErrMalformed.
func UnmarshalStructured(data []byte, m *bus.Message) error {
	if !looksStructured(data) {
		m.Body = data
		m.ID = uuid.NewString()
		return nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("ce: %w: structured event is not valid JSON: %v", bus.ErrMalformed, err)
	}
	var errs []string
	str := func(name string) string {
		raw, ok := doc[name]
		if !ok {
			return ""
		}
		delete(doc, name)
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			errs = append(errs, fmt.Sprintf("%s is not a string", name))
		}
		return s
	}
	version := str(AttrSpecVersion)
	m.ID = str(AttrID)
	m.Source = str(AttrSource)
	m.Type = str(AttrType)
	m.Subject = str(AttrSubject)
	m.ContentType = str(AttrContentType)
	m.Key = str(AttrPartitionKey)
	if ts := str(AttrTime); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			errs = append(errs, fmt.Sprintf("time %q is not RFC 3339", ts))
		}
		m.Time = t
	}
	if ms := str(metaExt); ms != "" {
		if err := json.Unmarshal([]byte(ms), &m.Metadata); err != nil {
			errs = append(errs, metaExt+" is not a JSON object of strings")
		}
	}
	if raw, ok := doc["data_base64"]; ok {
		delete(doc, "data_base64")
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			errs = append(errs, "data_base64 is not a string")
		} else if m.Body, err = base64.StdEncoding.DecodeString(s); err != nil {
			errs = append(errs, "data_base64 is not base64")
		}
	}
	if raw, ok := doc["data"]; ok {
		delete(doc, "data")
		var s string
		if !isJSON(m.ContentType) && len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
			m.Body = []byte(s) // text data from another producer
		} else {
			m.Body = []byte(raw)
		}
	}
	for k, raw := range doc {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw) // numbers and booleans keep their JSON text
		}
		if m.Metadata == nil {
			m.Metadata = make(map[string]string)
		}
		m.Metadata[k] = s
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
