package amqp

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

// recordConn records what is written to it, one entry per Write call.
type recordConn struct {
	net.Conn // nil: corkConn uses only Write and Close
	writes   [][]byte
	fail     error
	closed   bool
}

func (r *recordConn) Write(p []byte) (int, error) {
	if r.fail != nil {
		return 0, r.fail
	}
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func (r *recordConn) Close() error { r.closed = true; return nil }

func (r *recordConn) all() string { return string(bytes.Join(r.writes, nil)) }

func TestCorkConn(t *testing.T) {
	t.Run("writes through when not held", func(t *testing.T) {
		r := &recordConn{}
		c := &corkConn{Conn: r}
		for _, s := range []string{"a", "b", "c"} {
			if n, err := c.Write([]byte(s)); n != 1 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if len(r.writes) != 3 {
			t.Fatalf("%d writes, want 3", len(r.writes))
		}
	})
	t.Run("a hold sends what it kept in one write, in order", func(t *testing.T) {
		r := &recordConn{}
		c := &corkConn{Conn: r}
		c.hold()
		c.hold() // nested: the inner release keeps holding
		for _, s := range []string{"a", "b", "c"} {
			if n, err := c.Write([]byte(s)); n != 1 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		c.release()
		if len(r.writes) != 0 {
			t.Fatalf("inner release wrote %q", r.writes)
		}
		c.release()
		if len(r.writes) != 1 || r.all() != "abc" {
			t.Fatalf("writes %q, want one: abc", r.writes)
		}
		_, _ = c.Write([]byte("d"))
		if len(r.writes) != 2 {
			t.Fatalf("a write after the hold was kept: %q", r.writes)
		}
	})
	t.Run("through sends what was kept, then writes straight out", func(t *testing.T) {
		r := &recordConn{}
		c := &corkConn{Conn: r}
		c.hold()
		_, _ = c.Write([]byte("a"))
		err := c.through(func() error {
			if r.all() != "a" {
				t.Errorf("kept bytes not sent before the call: %q", r.writes)
			}
			_, _ = c.Write([]byte("request"))
			if r.all() != "arequest" {
				t.Errorf("a request inside through was kept back: %q", r.writes)
			}
			return errors.New("answer")
		})
		if err == nil || err.Error() != "answer" {
			t.Fatalf("through = %v, want f's error", err)
		}
		_, _ = c.Write([]byte("b"))
		if r.all() != "arequest" {
			t.Fatalf("the hold did not come back after through: %q", r.writes)
		}
		c.release()
		if r.all() != "arequestb" {
			t.Fatalf("writes %q", r.writes)
		}
	})
	t.Run("a hold writes once it keeps corkLimit bytes", func(t *testing.T) {
		r := &recordConn{}
		c := &corkConn{Conn: r}
		c.hold()
		chunk := make([]byte, corkLimit/2)
		for range 3 {
			_, _ = c.Write(chunk)
		}
		if len(r.writes) != 1 || len(r.writes[0]) != corkLimit {
			t.Fatalf("held %d bytes with %d writes, want one write of the first %d", 3*len(chunk), len(r.writes), corkLimit)
		}
		c.release()
		if len(r.writes) != 2 {
			t.Fatalf("%d writes after release, want 2", len(r.writes))
		}
	})
	t.Run("a failed write on release closes the connection", func(t *testing.T) {
		r := &recordConn{}
		c := &corkConn{Conn: r}
		c.hold()
		_, _ = c.Write([]byte("a"))
		r.fail = errors.New("broken pipe")
		c.release()
		if !r.closed {
			t.Fatal("connection not closed after a failed write: the client would not notice")
		}
	})
	t.Run("nil does nothing", func(t *testing.T) {
		var c *corkConn
		c.hold()
		c.release()
		if err := c.through(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	})
}
