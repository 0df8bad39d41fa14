package ce

import (
	"encoding/base64"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
)

// MaxExtensionNameBytes is the longest metadata key that travels as a
// CloudEvents extension attribute. CloudEvents 1.0 says names SHOULD NOT
// exceed 20 characters; a longer key stays a plain header, so that every
// extension busline writes can be read by every CloudEvents SDK.
const MaxExtensionNameBytes = 20

// IsExtensionName reports whether k is a valid CloudEvents 1.0 attribute
// name of at most MaxExtensionNameBytes: lower-case ASCII letters and
// digits only.
func IsExtensionName(k string) bool {
	if k == "" || len(k) > MaxExtensionNameBytes {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// fieldAttribute reports whether k names a context attribute (or a
// structured mode member) that busline carries in a Message field or uses
// itself: metadata under such a key cannot be an extension and stays a
// plain header (in structured mode, a member of busmetadata).
func fieldAttribute(k string) bool {
	switch k {
	case AttrID, AttrSource, AttrType, AttrSpecVersion, AttrTime, AttrSubject, AttrContentType,
		AttrPartitionKey, "data", metaExt:
		return true
	}
	return false
}

// traceHeader reports whether k is a W3C trace context header, which
// OpenTelemetry's messaging instrumentations read as a plain header.
func traceHeader(k string) bool { return k == "traceparent" || k == "tracestate" }

// IsBinaryExtension reports whether the metadata key k travels as a
// binary mode extension header (prefix + k): a valid extension name that
// is neither a context attribute busline carries in a Message field nor
// a W3C trace context header. "dataschema", which has no field, is one.
func IsBinaryExtension(k string) bool {
	return IsExtensionName(k) && !fieldAttribute(k) && !traceHeader(k)
}

// isStructuredExtension reports whether the metadata key k is a top-level
// member of a structured mode document. Structured mode has no plain
// headers, so the trace context headers are members too.
func isStructuredExtension(k string) bool {
	return IsExtensionName(k) && !fieldAttribute(k)
}

// Foreign metadata: what a received header becomes when it cannot be
// metadata as it is.
const (
	// foreignBase64 follows driver.MetaForeignPrefix when the original key
	// or value is not valid UTF-8: the rest of the key is the original
	// key in unpadded URL-safe base64, the value the original value in
	// standard base64.
	foreignBase64 = "base64-"
)

// publishable reports whether Message.Validate accepts k and v as one
// metadata entry.
func publishable(k, v string) bool {
	return k != "" && len(k) <= bus.MaxMetadataKeyBytes && utf8.ValidString(k) && utf8.ValidString(v) && !driver.IsReservedKey(k)
}

// foreign returns the metadata entry that carries the received header k
// with value v when it cannot be metadata as it is: a key with
// driver.MetaForeignPrefix (see bus.Message.Metadata for the encoding). The
// key is cut to bus.MaxMetadataKeyBytes.
func foreign(k, v string) (string, string) {
	var key string
	if utf8.ValidString(k) && utf8.ValidString(v) {
		key = driver.MetaForeignPrefix + k
	} else {
		key = driver.MetaForeignPrefix + foreignBase64 + base64.RawURLEncoding.EncodeToString([]byte(k))
		v = base64.StdEncoding.EncodeToString([]byte(v))
	}
	if len(key) > bus.MaxMetadataKeyBytes {
		key = strings.ToValidUTF8(key[:bus.MaxMetadataKeyBytes], "")
	}
	return key, v
}

// SafeMetadata makes md pass bus.Message.Validate, changing it in place:
// an entry whose key or value cannot be published becomes a foreign entry
// (see bus.Message.Metadata), and when the entries add up to more than
// limit bytes the largest are dropped, their keys listed under
// driver.MetaForeignDropped. Entries whose keys start with keep are dropped
// last. It returns md, or a new map when md was nil and something had to
// be added.
func SafeMetadata(md map[string]string, limit int, keep string) map[string]string {
	var fix []string
	total := 0
	for k, v := range md {
		if !publishable(k, v) {
			fix = append(fix, k)
			continue
		}
		total += len(k) + len(v)
	}
	for _, k := range fix {
		v := md[k]
		delete(md, k)
		fk, fv := foreign(k, v)
		if old, ok := md[fk]; ok {
			total -= len(fk) + len(old)
		}
		md[fk] = fv
		total += len(fk) + len(fv)
	}
	if total <= limit {
		return md
	}
	// Over the limit: drop the largest entries first, ours last.
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ki, kj := keep != "" && strings.HasPrefix(keys[i], keep), keep != "" && strings.HasPrefix(keys[j], keep)
		if ki != kj {
			return kj
		}
		si, sj := len(keys[i])+len(md[keys[i]]), len(keys[j])+len(md[keys[j]])
		if si != sj {
			return si > sj
		}
		return keys[i] < keys[j]
	})
	const maxList = 1 << 10
	var dropped []string
	listed := 0
	room := limit - len(driver.MetaForeignDropped) - maxList - 4
	for _, k := range keys {
		if total <= room {
			break
		}
		total -= len(k) + len(md[k])
		delete(md, k)
		if listed+len(k)+1 <= maxList {
			dropped = append(dropped, k)
			listed += len(k) + 1
		}
	}
	if len(dropped) > 0 {
		md[driver.MetaForeignDropped] = strings.Join(dropped, ",")
	}
	return md
}
