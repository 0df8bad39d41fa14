package ce

import (
	"testing"

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
