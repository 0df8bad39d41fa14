package ce

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
)

func sample() *bus.Message {
	return &bus.Message{
		ID: "id-1", Type: "order.created", Source: "/orders", Subject: "order 42 ✓",
		Time: time.Date(2026, 11, 28, 10, 0, 0, 123456789, time.UTC), ContentType: "application/octet-stream",
		Key: "customer-7", Metadata: map[string]string{"trace": "abc", "Weird Key/ü": "va\"lue\n\x01", "n": ""},
		Body: []byte{0, 1, 2, 0xff, '"', '\\'},
	}
}

func equal(t *testing.T, want, got *bus.Message) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Type, got.Type)
	require.Equal(t, want.Source, got.Source)
	require.Equal(t, want.Subject, got.Subject)
	require.True(t, want.Time.Equal(got.Time), "time %v != %v", want.Time, got.Time)
	require.Equal(t, want.ContentType, got.ContentType)
	require.Equal(t, want.Key, got.Key)
	require.Equal(t, len(want.Metadata), len(got.Metadata))
	for k, v := range want.Metadata {
		require.Equal(t, v, got.Metadata[k], k)
	}
	require.True(t, bytes.Equal(want.Body, got.Body), "body %q != %q", want.Body, got.Body)
}

func TestBinaryRoundTrip(t *testing.T) {
	for _, prefix := range []string{KafkaPrefix, AMQPPrefix} {
		m := sample()
		var got bus.Message
		got.Body = m.Body
		d := NewBinaryDecoder(prefix, &got)
		EncodeBinary(m, prefix, d.Header)
		d.Header(ContentTypeHeader, m.ContentType)
		require.NoError(t, d.Finish())
		equal(t, m, &got)
	}
}

func TestStructuredRoundTrip(t *testing.T) {
	for _, c := range []struct {
		body []byte
		ct   string
		want string // a fragment of the document
	}{
		{sample().Body, "application/octet-stream", `"data_base64":`},
		{[]byte(`{"a":[1,2]}`), "application/json", `"data":{"a":[1,2]}`},
		{[]byte("héllo \"x\"\n"), "text/plain; charset=utf-8", `"data":"héllo \"x\"\n"`},
		{[]byte{0xff}, "text/plain", `"data_base64":`},
		{nil, "", `"type"`},
		{[]byte{}, "", `"data_base64":""`},
	} {
		m := sample()
		m.Body, m.ContentType = c.body, c.ct
		require.Contains(t, string(MarshalStructured(m)), c.want)
		var got bus.Message
		require.NoError(t, UnmarshalStructured(MarshalStructured(m), &got))
		equal(t, m, &got)
	}
}

func TestPlainPayloadsAreAccepted(t *testing.T) {
	for _, p := range []string{"Hello, Redis!", "", `{"order":1}`, "[1,2]", "{not json"} {
		var m bus.Message
		require.NoError(t, UnmarshalStructured([]byte(p), &m))
		require.Equal(t, p, string(m.Body))
		require.NotEmpty(t, m.ID)
	}
	var m bus.Message
	d := NewBinaryDecoder(KafkaPrefix, &m)
	d.Header("x-app", "1")
	require.NoError(t, d.Finish())
	require.NotEmpty(t, m.ID)
	require.Equal(t, "1", m.Metadata["x-app"])
}

func TestMalformedIsRejected(t *testing.T) {
	for name, doc := range map[string]string{
		"bad json":      `{"specversion":"1.0",`,
		"wrong version": `{"specversion":"0.3","id":"1","source":"s","type":"t"}`,
		"no id":         `{"specversion":"1.0","source":"s","type":"t"}`,
		"bad time":      `{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday"}`,
		"id not string": `{"specversion":"1.0","id":7,"source":"s","type":"t"}`,
		"bad base64":    `{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"%%"}`,
		"bad metadata":  `{"specversion":"1.0","id":"1","source":"s","type":"t","busmetadata":"[1]"}`,
	} {
		t.Run(name, func(t *testing.T) {
			var m bus.Message
			err := UnmarshalStructured([]byte(doc), &m)
			require.Error(t, err)
			require.True(t, errors.Is(err, bus.ErrMalformed), err)
		})
	}
	var m bus.Message
	d := NewBinaryDecoder(KafkaPrefix, &m)
	d.Header("ce_specversion", "1.0")
	d.Header("ce_id", "1")
	d.Header("ce_time", "noon")
	err := d.Finish()
	require.ErrorIs(t, err, bus.ErrMalformed)
	require.Contains(t, err.Error(), "source is empty")
}

func FuzzUnmarshalStructured(f *testing.F) {
	f.Add(MarshalStructured(sample()))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"x":1},"ext":true}`))
	f.Add([]byte("Hello, Redis!"))
	f.Add([]byte(`{"specversion":"1.0","busmetadata":"{\"a\":\"b\"}"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m bus.Message
		err := UnmarshalStructured(data, &m)
		if err == nil && looksStructured(data) && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded metadata does not validate: %v", err)
		}
		if err != nil {
			if !errors.Is(err, bus.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if !looksStructured(data) {
			return
		}
		// What decodes must encode and decode to the same envelope.
		var again bus.Message
		if err := UnmarshalStructured(MarshalStructured(&m), &again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.ID != m.ID || again.Type != m.Type || again.Source != m.Source || again.Key != m.Key || !again.Time.Equal(m.Time) {
			t.Fatalf("attributes changed: %+v vs %+v", m, again)
		}
	})
}

func FuzzBinaryDecoder(f *testing.F) {
	f.Add("ce_specversion", "1.0", "ce_id", "x", "ce_time", "2026-01-02T03:04:05Z")
	f.Add("content-type", "text/plain", "CE_ID", "", "other", "\xff")
	f.Add("ce_tenant", "a", "tenant", "b", "cloudEvents_x", "c")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		var m bus.Message
		d := NewBinaryDecoder(KafkaPrefix, &m)
		d.Header(k1, v1)
		d.Header(k2, v2)
		d.Header(k3, v3)
		if err := d.Finish(); err != nil && !errors.Is(err, bus.ErrMalformed) {
			t.Fatalf("error does not wrap ErrMalformed: %v", err)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded metadata does not validate: %v", err)
		}
	})
}

// TestExtensionsOnTheWire checks which metadata travels as an extension
// header and which as a plain one, and that both decode back.
func TestExtensionsOnTheWire(t *testing.T) {
	md := map[string]string{
		"tenant": "acme", "dataschema": "https://example.com/s.json", "abcdefghij0123456789": "20 chars",
		"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "k=v",
		"abcdefghij01234567890": "21 chars", "Tenant": "upper", "trace-id": "x",
		"id": "plain id", "type": "plain type", "data": "plain data", "busmetadata": "x",
	}
	for _, prefix := range []string{KafkaPrefix, AMQPPrefix} {
		t.Run(prefix, func(t *testing.T) {
			m := sample()
			m.Metadata = md
			got := map[string]string{}
			EncodeBinary(m, prefix, func(k, v string) { got[k] = v })
			for _, k := range []string{"tenant", "dataschema", "abcdefghij0123456789"} {
				require.Equal(t, md[k], got[prefix+k], k)
				require.NotContains(t, got, k)
			}
			for _, k := range []string{"traceparent", "tracestate", "abcdefghij01234567890", "Tenant", "trace-id", "id", "type", "data", "busmetadata"} {
				require.Equal(t, md[k], got[k], k)
			}
			for _, k := range []string{"traceparent", "tracestate", "abcdefghij01234567890", "trace-id", "data", "busmetadata"} {
				require.NotContains(t, got, prefix+k)
			}
			require.Equal(t, m.ID, got[prefix+"id"]) // the attribute, not the metadata
			var back bus.Message
			d := NewBinaryDecoder(prefix, &back)
			for k, v := range got {
				d.Header(k, v)
			}
			require.NoError(t, d.Finish())
			require.Equal(t, md, back.Metadata)
			require.Equal(t, m.ID, back.ID)
		})
	}
	// Structured mode: extension names are top-level members, the trace
	// headers too; the rest is in busmetadata.
	m := sample()
	m.Metadata = md
	var doc map[string]any
	require.NoError(t, json.Unmarshal(MarshalStructured(m), &doc))
	for _, k := range []string{"tenant", "dataschema", "abcdefghij0123456789", "traceparent", "tracestate"} {
		require.Equal(t, md[k], doc[k], k)
	}
	require.Equal(t, m.ID, doc["id"])
	var back bus.Message
	require.NoError(t, UnmarshalStructured(MarshalStructured(m), &back))
	require.Equal(t, md, back.Metadata)
}

// TestForeignExtensionsArriveUnderPlainNames: another CloudEvents
// producer's extension headers become metadata without their prefix, and
// an unprefixed header of the same name gives way to them whatever the
// order.
func TestForeignExtensionsArriveUnderPlainNames(t *testing.T) {
	for _, prefix := range []string{KafkaPrefix, AMQPPrefix} {
		for _, order := range [][2]string{{prefix + "tenant", "tenant"}, {"tenant", prefix + "tenant"}} {
			var m bus.Message
			d := NewBinaryDecoder(prefix, &m)
			d.Header(prefix+"specversion", "1.0")
			d.Header(prefix+"id", "1")
			d.Header(prefix+"source", "s")
			d.Header(prefix+"type", "t")
			d.Header(prefix+"Region", "eu") // matched case-insensitively
			for _, h := range order {
				d.Header(h, "from "+h)
			}
			require.NoError(t, d.Finish())
			require.Equal(t, map[string]string{
				"tenant":                            "from " + prefix + "tenant",
				driver.MetaForeignPrefix + "tenant": "from tenant",
				"region":                            "eu",
			}, m.Metadata, order)
			require.NoError(t, m.Validate())
		}
	}
	// The plain trace context header wins over a prefixed one.
	for _, order := range [][2]string{{"ce_traceparent", "traceparent"}, {"traceparent", "ce_traceparent"}} {
		var m bus.Message
		d := NewBinaryDecoder(KafkaPrefix, &m)
		for _, h := range order {
			d.Header(h, h)
		}
		require.NoError(t, d.Finish())
		require.Equal(t, map[string]string{"traceparent": "traceparent", driver.MetaForeignPrefix + "ce_traceparent": "ce_traceparent"}, m.Metadata)
	}
	var m bus.Message
	d := NewBinaryDecoder(KafkaPrefix, &m)
	d.Header("ce_traceparent", "x")
	require.NoError(t, d.Finish())
	require.Equal(t, map[string]string{"traceparent": "x"}, m.Metadata)

	// A name over 20 characters is accepted as an extension, and sent on
	// as a plain header, which therefore wins over it.
	long := "averyveryverylongextension"
	m = bus.Message{}
	d = NewBinaryDecoder(KafkaPrefix, &m)
	d.Header("ce_"+long, "ext")
	require.NoError(t, d.Finish())
	require.Equal(t, map[string]string{long: "ext"}, m.Metadata)
	for _, order := range [][2]string{{"ce_" + long, long}, {long, "ce_" + long}} {
		m = bus.Message{}
		d = NewBinaryDecoder(KafkaPrefix, &m)
		for _, h := range order {
			d.Header(h, h)
		}
		require.NoError(t, d.Finish())
		require.Equal(t, map[string]string{long: long, driver.MetaForeignPrefix + "ce_" + long: "ce_" + long}, m.Metadata)
	}
	got := map[string]string{}
	EncodeBinary(&bus.Message{Metadata: map[string]string{long: "v"}}, KafkaPrefix, func(k, v string) { got[k] = v })
	require.Equal(t, "v", got[long])
}

// TestDecodedMetadataAlwaysValidates: whatever headers a record carries,
// the decoded message can be published again (a forwarder, a dead
// letter), and what could not be kept as it was is kept recognisably.
func TestDecodedMetadataAlwaysValidates(t *testing.T) {
	long := strings.Repeat("k", 300)
	big := strings.Repeat("v", 40<<10)
	cases := []struct {
		prefix, key, value string
		want               map[string]string
	}{
		{KafkaPrefix, "cloudEvents_tenant", "a", map[string]string{"busline-foreign-cloudEvents_tenant": "a"}},
		{AMQPPrefix, "ce_tenant", "a", map[string]string{"busline-foreign-ce_tenant": "a"}},
		{KafkaPrefix, "ce_", "a", map[string]string{"busline-foreign-ce_": "a"}},
		{KafkaPrefix, "ce_my-ext", "a", map[string]string{"busline-foreign-ce_my-ext": "a"}},
		{KafkaPrefix, "ce_data", "a", map[string]string{"busline-foreign-ce_data": "a"}},
		{KafkaPrefix, "ce_tenant", "\xff", map[string]string{"busline-foreign-base64-Y2VfdGVuYW50": "/w=="}},
		{KafkaPrefix, "x-app", "caf\xe9", map[string]string{"busline-foreign-base64-eC1hcHA": "Y2Fm6Q=="}},
		{KafkaPrefix, "k\xff", "v", map[string]string{"busline-foreign-base64-a_8": "dg=="}},
		{AMQPPrefix, "", "v", map[string]string{"busline-foreign-": "v"}},
		{KafkaPrefix, long, "v", map[string]string{("busline-foreign-" + long)[:bus.MaxMetadataKeyBytes]: "v"}},
	}
	for _, c := range cases {
		var m bus.Message
		d := NewBinaryDecoder(c.prefix, &m)
		d.Header(c.key, c.value)
		require.NoError(t, d.Finish())
		require.Equal(t, c.want, m.Metadata, "%s %q", c.prefix, c.key)
		require.NoError(t, m.Validate())
	}
	// Over MaxMetadataBytes: the largest entries go, and are listed.
	var m bus.Message
	d := NewBinaryDecoder(KafkaPrefix, &m)
	d.Header("a", big)
	d.Header("b", big)
	d.Header("small", "kept")
	require.NoError(t, d.Finish())
	require.NoError(t, m.Validate())
	require.Equal(t, "kept", m.Metadata["small"])
	require.Len(t, m.Metadata, 3)
	require.Contains(t, []string{"a", "b"}, m.Metadata[driver.MetaForeignDropped])

	// Structured mode: members and busmetadata entries alike.
	var s bus.Message
	require.NoError(t, UnmarshalStructured([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","ce_x":"a","tenant":"b",`+
		`"busmetadata":"{\"content-type\":\"c\",\"ok\":\"d\"}"}`), &s))
	require.Equal(t, map[string]string{"busline-foreign-ce_x": "a", "tenant": "b", "busline-foreign-content-type": "c", "ok": "d"}, s.Metadata)
	require.NoError(t, s.Validate())
}
