package ce

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/busline/bus"
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
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		var m bus.Message
		d := NewBinaryDecoder(KafkaPrefix, &m)
		d.Header(k1, v1)
		d.Header(k2, v2)
		d.Header(k3, v3)
		if err := d.Finish(); err != nil && !errors.Is(err, bus.ErrMalformed) {
			t.Fatalf("error does not wrap ErrMalformed: %v", err)
		}
	})
}
