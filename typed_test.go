package bus_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/busline/bus"
)

type shipment struct {
	Order int    `json:"order"`
	To    string `json:"to"`
}

func TestEncodeDecode(t *testing.T) {
	m, err := bus.Encode("shipment.sent.v2", shipment{Order: 7, To: "Oslo"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "shipment.sent.v2" || m.ContentType != "application/json" || string(m.Body) != `{"order":7,"to":"Oslo"}` {
		t.Fatalf("encoded %+v", m)
	}
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "application/vnd.acme+json"} {
		m.ContentType = ct
		if v, err := bus.Decode[shipment](m, nil); err != nil || v.Order != 7 || v.To != "Oslo" {
			t.Errorf("content type %q: %+v, %v", ct, v, err)
		}
	}
	for _, bad := range []*bus.Message{
		{ContentType: "text/plain", Body: []byte(`{"order":7}`)},
		{ContentType: "application/json", Body: []byte(`{"order":"seven"}`)},
		{Body: []byte(`not json`)},
	} {
		if _, err := bus.Decode[shipment](bad, nil); !errors.Is(err, bus.ErrMalformed) {
			t.Errorf("%q %q: %v, want ErrMalformed", bad.ContentType, bad.Body, err)
		}
	}
	if _, err := bus.Encode("", 1, nil); !errors.Is(err, bus.ErrInvalid) {
		t.Errorf("empty type: %v", err)
	}
	if _, err := bus.Encode("t", make(chan int), nil); !errors.Is(err, bus.ErrInvalid) {
		t.Errorf("unencodable value: %v", err)
	}
}

// A message that does not decode is a permanent error: never retried.
func TestHandleDecodeFailureIsPermanent(t *testing.T) {
	called := false
	h := bus.Handle(func(context.Context, shipment, *bus.Message) error { called = true; return nil })
	err := h(context.Background(), &bus.Message{Body: []byte("{")})
	if !bus.IsPermanent(err) || !errors.Is(err, bus.ErrMalformed) || called {
		t.Fatalf("err %v (permanent %v), called %v", err, bus.IsPermanent(err), called)
	}
}

func TestRouter(t *testing.T) {
	var got []string
	route := func(name string) bus.Handler {
		return func(context.Context, *bus.Message) error { got = append(got, name); return nil }
	}
	r := bus.NewRouter().Route("order.created", route("v1")).Route("order.created.v2", route("v2"))
	for _, typ := range []string{"order.created.v2", "order.created"} {
		if err := r.Handle(context.Background(), &bus.Message{Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0] != "v2" || got[1] != "v1" {
		t.Fatalf("routed %v", got)
	}
	err := r.Handle(context.Background(), &bus.Message{Type: "order.created.v3"})
	if !bus.IsPermanent(err) || !errors.Is(err, bus.ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
	r.Unknown(route("other"))
	if err := r.Handle(context.Background(), &bus.Message{Type: "order.created.v3"}); err != nil || got[2] != "other" {
		t.Fatalf("unknown handler: %v %v", err, got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a second route for one type did not panic")
		}
	}()
	r.Route("order.created", route("again"))
}

func TestPanicErrorUnwraps(t *testing.T) {
	pe := &bus.PanicError{Value: io.ErrUnexpectedEOF}
	if !errors.Is(pe, io.ErrUnexpectedEOF) {
		t.Fatal("PanicError does not unwrap to an error panic value")
	}
	if (&bus.PanicError{Value: "text"}).Unwrap() != nil {
		t.Fatal("a non-error panic value unwraps")
	}
}

func TestRetryAfterWrapper(t *testing.T) {
	base := errors.New("busy")
	err := bus.RetryAfter(base, 30*time.Second)
	if d, ok := bus.RetryDelay(err); !ok || d != 30*time.Second || !errors.Is(err, base) {
		t.Fatalf("RetryDelay = %v, %v", d, ok)
	}
	if _, ok := bus.RetryDelay(base); ok {
		t.Fatal("a plain error asks for a delay")
	}
	if bus.RetryAfter(nil, time.Second) != nil {
		t.Fatal("RetryAfter(nil) is not nil")
	}
}
