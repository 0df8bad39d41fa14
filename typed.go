package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
)

// Codec turns Go values into message bodies and back, under one media
// type. Implementations must be safe for concurrent use.
type Codec interface {
	// ContentType is the media type of the bodies, such as
	// "application/json"; Encode sets it on the message.
	ContentType() string
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a non-nil pointer.
	Unmarshal(data []byte, v any) error
}

// JSON returns the codec for encoding/json, content type
// "application/json". It is the default wherever a Codec is optional.
func JSON() Codec { return jsonCodec{} }

type jsonCodec struct{}

func (jsonCodec) ContentType() string                { return "application/json" }
func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Encode returns a message of type typ whose body is v encoded with c (JSON
// when c is nil) and whose ContentType is c's. Name types after the
// event's contract, with a version when it changes incompatibly:
// "order.created", "order.created.v2".
func Encode(typ string, v any, c Codec) (*Message, error) {
	if typ == "" {
		return nil, fmt.Errorf("bus: %w: encode: empty event type", ErrInvalid)
	}
	if c == nil {
		c = JSON()
	}
	body, err := c.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("bus: %w: encode %s as %s: %w", ErrInvalid, typ, c.ContentType(), err)
	}
	return &Message{Type: typ, ContentType: c.ContentType(), Body: body}, nil
}

// Decode decodes m's body into a T with c (JSON when c is nil). A message
// whose ContentType names another media type than c's, or whose body does
// not decode, is an error wrapping ErrMalformed. An empty ContentType is
// accepted (plain producers often send none), and for JSON so is any
// "+json" media type.
func Decode[T any](m *Message, c Codec) (T, error) {
	var v T
	if c == nil {
		c = JSON()
	}
	if !contentTypeFits(m.ContentType, c.ContentType()) {
		return v, fmt.Errorf("bus: %w: %s: content type %q, want %q", ErrMalformed, describe(m), m.ContentType, c.ContentType())
	}
	if err := c.Unmarshal(m.Body, &v); err != nil {
		return v, fmt.Errorf("bus: %w: %s: decode %s: %w", ErrMalformed, describe(m), c.ContentType(), err)
	}
	return v, nil
}

func describe(m *Message) string {
	if m.Type == "" {
		return "message " + m.ID
	}
	return fmt.Sprintf("%s message %s", m.Type, m.ID)
}

// contentTypeFits reports whether a message's content type can be decoded
// by a codec of media type want.
func contentTypeFits(got, want string) bool {
	if got == "" {
		return true
	}
	g, _, err := mime.ParseMediaType(got)
	if err != nil {
		return false
	}
	w, _, err := mime.ParseMediaType(want)
	if err != nil {
		return g == strings.ToLower(want)
	}
	return g == w || w == "application/json" && strings.HasSuffix(g, "+json")
}

// Handle returns a Handler that decodes each message into a T with JSON
// and calls f with the value and the message. A message that does not
// decode (see Decode) fails with a permanent error: it goes to the dead
// letter topic with the reason, and is never retried. f's own errors are
// retried as usual.
func Handle[T any](f func(ctx context.Context, v T, m *Message) error) Handler {
	return HandleWith(JSON(), f)
}

// HandleWith is Handle with the codec c.
func HandleWith[T any](c Codec, f func(ctx context.Context, v T, m *Message) error) Handler {
	if c == nil {
		c = JSON()
	}
	return func(ctx context.Context, m *Message) error {
		v, err := Decode[T](m, c)
		if err != nil {
			return Permanent(err)
		}
		return f(ctx, v, m)
	}
}

// ErrUnknownType is the error a Router returns, by default, for a message
// whose Type has no route.
var ErrUnknownType = errors.New("no handler for the message type")

// Router is a Handler that dispatches each message on its Type to the
// handler routed for it. Types match exactly: "order.created" and
// "order.created.v2" are two types, each routed on its own, so that a
// consumer states which versions of a contract it handles.
//
// A message whose Type has no route goes to the Unknown handler; by
// default that is a permanent error wrapping ErrUnknownType, which sends
// the message to the dead letter topic, never retried. Route all routes
// before subscribing; a Router is then safe for concurrent use.
type Router struct {
	routes  map[string]Handler
	unknown Handler
}

// NewRouter returns a Router with no routes.
func NewRouter() *Router { return &Router{routes: map[string]Handler{}} }

// Route sends messages of type typ to h and returns r. It panics when typ
// is empty, h is nil or typ already has a route: these are programming
// errors.
func (r *Router) Route(typ string, h Handler) *Router {
	switch {
	case typ == "":
		panic("bus: Router.Route with an empty type")
	case h == nil:
		panic("bus: Router.Route " + typ + " with a nil handler")
	case r.routes[typ] != nil:
		panic("bus: Router.Route: " + typ + " already has a route")
	}
	r.routes[typ] = h
	return r
}

// Unknown sends messages whose type has no route to h instead of the dead
// letter topic, and returns r. A handler that returns nil acknowledges
// (drops) them.
func (r *Router) Unknown(h Handler) *Router {
	r.unknown = h
	return r
}

// Handle is the Router's Handler: pass r.Handle to Subscribe.
func (r *Router) Handle(ctx context.Context, m *Message) error {
	if h := r.routes[m.Type]; h != nil {
		return h(ctx, m)
	}
	if r.unknown != nil {
		return r.unknown(ctx, m)
	}
	return Permanent(fmt.Errorf("bus: %w: %q (message %s)", ErrUnknownType, m.Type, m.ID))
}
