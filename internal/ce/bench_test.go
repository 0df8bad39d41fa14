package ce

import (
	"testing"
	"time"

	"github.com/busline/bus"
)

func benchMessage() *bus.Message {
	m := sample()
	m.Body = make([]byte, 1024)
	return m
}

func BenchmarkMarshalStructured(b *testing.B) {
	m := benchMessage()
	b.ReportAllocs()
	for b.Loop() {
		MarshalStructured(m)
	}
}

func BenchmarkUnmarshalStructured(b *testing.B) {
	data := MarshalStructured(benchMessage())
	b.ReportAllocs()
	for b.Loop() {
		var m bus.Message
		if err := UnmarshalStructured(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBinaryRoundTrip(b *testing.B) {
	m := benchMessage()
	b.ReportAllocs()
	for b.Loop() {
		var got bus.Message
		d := NewBinaryDecoder(KafkaPrefix, &got)
		EncodeBinary(m, KafkaPrefix, d.Header)
		if err := d.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

// e2eMessage is what the redispubsub end-to-end benchmark publishes: a
// 1 KiB body without a content type (so it travels as data_base64) and the
// attributes Publish fills in.
func e2eMessage() *bus.Message {
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	return &bus.Message{ID: "4f1c0a7e-7a55-4c8e-9a41-0c6f3b2d9e10", Source: bus.DefaultSource, Type: bus.DefaultType,
		Time: time.Date(2026, 11, 28, 10, 0, 0, 123456789, time.UTC), Body: body}
}

func BenchmarkMarshalStructured1KiB(b *testing.B) {
	m := e2eMessage()
	b.ReportAllocs()
	for b.Loop() {
		MarshalStructured(m)
	}
}

func BenchmarkUnmarshalStructured1KiB(b *testing.B) {
	data := MarshalStructured(e2eMessage())
	b.ReportAllocs()
	for b.Loop() {
		var m bus.Message
		if err := UnmarshalStructured(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}
