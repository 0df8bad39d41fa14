package amqp

import (
	"net"
	"sync"
)

// corkConn is the connection under the AMQP client. Held, it keeps what
// the client writes (the client flushes every frame it sends, one write
// each) and sends it in one write when released, so that a publisher
// writing many messages in a row pays one system call, and the broker one
// read, for all of them. Not held, it writes through.
//
// The client serializes its writes; mu also orders them with hold and
// release, which another goroutine calls. A write error met while
// releasing closes the connection: the client then fails on its next read
// and write, and reports the connection lost as it would have. A write
// that blocks (a broker that stopped reading) holds mu as the client's own
// write lock would: the missed heartbeats close the connection, which ends
// the write; the messages in it are unconfirmed and published again on the
// next connection.
type corkConn struct {
	net.Conn
	mu   sync.Mutex
	held int // nesting depth of hold
	buf  []byte
}

// corkLimit is how many bytes a hold keeps before writing them anyway.
const corkLimit = 256 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == 0 {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= corkLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// hold starts keeping writes. It is a no-op on a nil corkConn.
func (c *corkConn) hold() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.held++
	c.mu.Unlock()
}

// release ends a hold and, at the outermost one, writes what was kept.
func (c *corkConn) release() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held--
	if c.held == 0 && len(c.buf) > 0 {
		_ = c.flushLocked()
	}
}

// through runs f, a call that waits for the broker's answer, with writes
// going straight out (what was kept goes first): a request kept back
// would never be answered. The holds are back when f returns.
func (c *corkConn) through(f func() error) error {
	if c == nil {
		return f()
	}
	c.mu.Lock()
	held := c.held
	c.held = 0
	if len(c.buf) > 0 {
		_ = c.flushLocked()
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.held += held
		c.mu.Unlock()
	}()
	return f()
}

func (c *corkConn) flushLocked() error {
	_, err := c.Conn.Write(c.buf)
	clear(c.buf)
	c.buf = c.buf[:0]
	if cap(c.buf) > 4*corkLimit {
		c.buf = nil
	}
	if err != nil {
		_ = c.Conn.Close()
	}
	return err
}
