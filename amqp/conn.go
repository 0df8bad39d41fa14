package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/tlsconf"
)

// conn supervises one AMQP connection: it dials on demand, hands the live
// connection to the sessions that open channels on it and redials after
// the connection is lost. Sessions notice the loss through their own
// channel's close notification and come back for a new connection.
//
// A dial runs without holding mu, so that As, abort and close never wait
// for a broker that accepts TCP but does not answer; close and abort cut
// a dial in progress.
type conn struct {
	cfg  Config
	log  *slog.Logger
	name string // redacted URL, for errors and logs

	nodes []node // the URL's host, then Config.Addrs

	mu     sync.Mutex
	c      *amqp091.Connection
	cork   *corkConn // c's
	closed bool
	dialed bool     // a connection was established once
	dial   *dialing // the dial in progress, if any
	first  int      // the node a dial tries first: the last that answered
}

// node is one broker address a connection can be made to.
type node struct {
	url  string      // the Config URL with this node's host and port
	name string      // url, redacted
	tls  *tls.Config // with this node's host as server name, unless set
}

// dialing is one connection attempt that other callers of get wait for.
type dialing struct {
	done   chan struct{} // closed when the attempt ends
	err    error         // its outcome, set before done is closed
	cancel context.CancelFunc
}

func newConn(cfg Config) (*conn, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	c := &conn{cfg: cfg, log: cfg.Logger, name: bus.RedactURL(cfg.URL)}
	c.nodes = append(c.nodes, node{url: cfg.URL, name: c.name, tls: t})
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("amqp: %w: URL %q", bus.ErrInvalid, c.name)
	}
	for _, addr := range cfg.Addrs {
		u := *base
		u.Host = addr
		n := node{url: u.String(), name: bus.RedactURL(u.String()), tls: t}
		if t != nil && cfg.TLSServerName == "" {
			n.tls = t.Clone()
			n.tls.ServerName = u.Hostname()
		}
		c.nodes = append(c.nodes, n)
	}
	if len(c.nodes) > 1 {
		c.name = fmt.Sprintf("%s (+%d more nodes)", c.name, len(c.nodes)-1)
	}
	return c, nil
}

// get returns the live connection, dialing when there is none. Callers
// share one dial, which runs on its own goroutine: a caller whose ctx ends
// stops waiting, the dial goes on for the others and for the next get.
func (c *conn) get(ctx context.Context) (*amqp091.Connection, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, bus.ErrClosed
		}
		if c.c != nil && !c.c.IsClosed() {
			ac := c.c
			c.mu.Unlock()
			return ac, nil
		}
		d := c.dial
		if d == nil {
			dctx, cancel := context.WithCancel(context.Background())
			d = &dialing{done: make(chan struct{}), cancel: cancel}
			c.dial = d
			go c.redial(dctx, d)
		}
		c.mu.Unlock()
		select {
		case <-d.done:
			if d.err != nil {
				return nil, d.err
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("amqp: connect to %s: %w", c.name, ctx.Err())
		}
	}
}

// redial runs the attempt d and installs the connection it makes.
func (c *conn) redial(ctx context.Context, d *dialing) {
	c.mu.Lock()
	first := c.first
	c.mu.Unlock()
	ac, cork, at, err := c.dialNodes(ctx, first)
	d.cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(d.done)
	c.dial = nil
	switch {
	case c.closed:
		if ac != nil {
			_ = ac.Close()
		}
		d.err = bus.ErrClosed
	case err != nil:
		d.err = err
	default:
		if c.dialed {
			c.log.Info("amqp: reconnected", "url", c.nodes[at].name)
		}
		c.dialed = true
		c.c, c.cork = ac, cork
		c.first = at
	}
}

// dialNodes tries the nodes in turn, starting at first, and returns the
// connection and the index of the node that answered. A refused login or
// vhost ends the attempt at once: every node of a cluster shares them.
func (c *conn) dialNodes(ctx context.Context, first int) (*amqp091.Connection, *corkConn, int, error) {
	var errs nodeErrors
	for i := range c.nodes {
		at := (first + i) % len(c.nodes)
		n := c.nodes[at]
		ac, cork, err := c.dialOnce(ctx, n)
		if err == nil {
			return ac, cork, at, nil
		}
		err = dialError(n.name, err)
		if permanent(err) || ctx.Err() != nil || len(c.nodes) == 1 {
			return nil, nil, 0, err
		}
		c.log.Warn("amqp: node did not answer; trying the next", "url", n.name, "error", err)
		errs = append(errs, err)
	}
	return nil, nil, 0, fmt.Errorf("amqp: %w: none of the %d nodes answered: %w", bus.ErrUnreachable, len(c.nodes), errs)
}

// nodeErrors are the failures of one dial of every node, in order.
type nodeErrors []error

func (e nodeErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e nodeErrors) Unwrap() []error { return e }

// dialOnce makes one connection attempt to n; cancelling ctx cuts it,
// whether it is connecting or in the TLS or AMQP handshake.
func (c *conn) dialOnce(ctx context.Context, n node) (*amqp091.Connection, *corkConn, error) {
	var stop func() bool
	var tlsConn *alertConn
	var cork *corkConn
	dial := func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: c.cfg.DialTimeout}
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// The handshakes are bounded like the connect; the client clears
		// the deadline once the connection is open.
		if err := nc.SetDeadline(time.Now().Add(c.cfg.DialTimeout)); err != nil {
			_ = nc.Close()
			return nil, err
		}
		stop = context.AfterFunc(ctx, func() { _ = nc.Close() })
		if n.tls == nil {
			cork = &corkConn{Conn: nc}
			return cork, nil
		}
		tc := tls.Client(nc, n.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, err
		}
		tlsConn = &alertConn{Conn: tc}
		cork = &corkConn{Conn: tlsConn}
		return cork, nil
	}
	u := n.url
	if n.tls != nil {
		// TLS is done by dial above, not by the client: with TLS 1.3 the
		// server refuses a client certificate only after the handshake,
		// and the client may then report just a closed connection. dial
		// keeps the server's alert for the error.
		u = plainURL(n.url)
	}
	ac, err := amqp091.DialConfig(u, amqp091.Config{
		Heartbeat:  c.cfg.Heartbeat,
		Locale:     "en_US",
		Dial:       dial,
		Properties: amqp091.Table{"connection_name": c.cfg.ConnectionName, "product": "busline"},
	})
	if err != nil && tlsConn != nil {
		if alert := tlsConn.alert(); alert != nil {
			err = alert
		}
	}
	if stop != nil && !stop() && err == nil {
		// Cut after the handshake completed: the connection is unusable.
		_ = ac.Close()
		return nil, nil, net.ErrClosed
	}
	if err != nil {
		return nil, nil, err
	}
	return ac, cork, nil
}

// alertConn is a TLS connection that keeps the first read error that is a
// TLS failure (an alert from the server).
type alertConn struct {
	net.Conn
	mu  sync.Mutex
	err error
}

func (a *alertConn) Read(b []byte) (int, error) {
	n, err := a.Conn.Read(b)
	if err != nil && tlsconf.HandshakeFailed(err) {
		a.mu.Lock()
		if a.err == nil {
			a.err = err
		}
		a.mu.Unlock()
	}
	return n, err
}

func (a *alertConn) alert() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// plainURL turns an amqps:// URL into the amqp:// one the client dials
// through an already encrypted connection, keeping the TLS default port.
func plainURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != SchemeTLS {
		return raw
	}
	u.Scheme = Scheme
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "5671")
	}
	return u.String()
}

// live returns the connection if it is open, without dialing.
func (c *conn) live() *amqp091.Connection {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.c == nil || c.c.IsClosed() {
		return nil
	}
	return c.c
}

// channel opens a channel on the live connection.
func (c *conn) channel(ctx context.Context) (*amqp091.Channel, *corkConn, error) {
	ac, err := c.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch, err := ac.Channel()
	if err != nil {
		return nil, nil, brokerError("open channel", err)
	}
	return ch, c.corker(ac), nil
}

// corker returns the corkConn under ac, or nil when ac is no longer the
// live connection (its writes then go through as they are).
func (c *conn) corker(ac *amqp091.Connection) *corkConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != ac {
		return nil
	}
	return c.cork
}

// close closes the connection for good and cuts a dial in progress.
func (c *conn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.dial != nil {
		c.dial.cancel()
	}
	if c.c != nil && !c.c.IsClosed() {
		if err := c.c.Close(); err != nil && !errors.Is(err, amqp091.ErrClosed) {
			return fmt.Errorf("amqp: close connection: %w", err)
		}
	}
	return nil
}

// abort cuts the live connection at once, unblocking a write to a broker
// that stopped reading, and cuts a dial in progress; sessions see either
// as a lost connection.
func (c *conn) abort() {
	c.mu.Lock()
	ac := c.c
	if c.dial != nil {
		c.dial.cancel()
	}
	c.mu.Unlock()
	if ac != nil {
		_ = ac.CloseDeadline(time.Now())
	}
}

// dialError classifies a failed connection attempt to the node name.
func dialError(name string, err error) error {
	var ae *amqp091.Error
	if errors.As(err, &ae) {
		switch {
		case ae == amqp091.ErrVhost || ae.Code == amqp091.NotAllowed && strings.Contains(ae.Reason, "vhost"):
			return fmt.Errorf("amqp: %w: vhost of %s does not exist or is not allowed for this user: %w", bus.ErrNotFound, name, err)
		case ae.Code == amqp091.AccessRefused:
			return fmt.Errorf("amqp: %w: broker %s refused the credentials: %w", bus.ErrPermission, name, err)
		case ae.Code == amqp091.FrameError && strings.Contains(ae.Reason, "tls: "):
			// The client reports a TLS failure it reads after the handshake
			// (a client certificate the server rejects) as a frame error
			// carrying only the text.
			return fmt.Errorf("amqp: %w: TLS handshake with %s failed: %w", bus.ErrUnreachable, name, err)
		case ae.Code == amqp091.FrameError:
			return fmt.Errorf("amqp: %w: connection to %s failed during the handshake: %w", bus.ErrUnreachable, name, err)
		}
		return fmt.Errorf("amqp: connect to %s: %w", name, err)
	}
	if tlsconf.HandshakeFailed(err) {
		return fmt.Errorf("amqp: %w: TLS handshake with %s failed: %w", bus.ErrUnreachable, name, err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("amqp: %w: cannot reach %s: %w", bus.ErrUnreachable, name, err)
	}
	return fmt.Errorf("amqp: %w: connect to %s: %w", bus.ErrUnreachable, name, err)
}

// brokerError maps an error the broker returned for op onto the bus
// sentinels, keeping the broker's error in the chain.
func brokerError(op string, err error) error {
	var ae *amqp091.Error
	if !errors.As(err, &ae) {
		return fmt.Errorf("amqp: %s: %w", op, err)
	}
	switch ae.Code {
	case amqp091.AccessRefused:
		return fmt.Errorf("amqp: %s: %w: %w", op, bus.ErrPermission, err)
	case amqp091.NotFound:
		return fmt.Errorf("amqp: %s: %w: %w", op, bus.ErrNotFound, err)
	case amqp091.PreconditionFailed:
		return fmt.Errorf("amqp: %s: %w: declared before with other settings: %w", op, bus.ErrInvalid, err)
	case amqp091.ResourceLocked:
		return fmt.Errorf("amqp: %s: %w: queue is exclusive to another connection: %w", op, bus.ErrPermission, err)
	case amqp091.ContentTooLarge, amqp091.FrameError:
		return fmt.Errorf("amqp: %s: %w: %w", op, bus.ErrTooLarge, err)
	}
	return fmt.Errorf("amqp: %s: %w", op, err)
}

// refusal reports whether the broker closed a channel or connection
// because of something the client sent on it (a message it refuses),
// rather than because it is going away or the network failed.
func refusal(e *amqp091.Error) bool {
	if e == nil || !e.Server {
		return false
	}
	switch e.Code {
	case amqp091.ContentTooLarge, amqp091.AccessRefused, amqp091.NotFound, amqp091.ResourceLocked,
		amqp091.PreconditionFailed, amqp091.FrameError, amqp091.SyntaxError, amqp091.CommandInvalid,
		amqp091.ChannelError, amqp091.UnexpectedFrame, amqp091.NotAllowed, amqp091.NotImplemented:
		return true
	}
	return false
}

// tooLarge reports whether a refusal is about a message's size: RabbitMQ
// closes the channel with 406 PRECONDITION_FAILED "message size N is
// larger than configured max size M".
func tooLarge(e *amqp091.Error) bool {
	return e != nil && (e.Code == amqp091.ContentTooLarge ||
		e.Code == amqp091.PreconditionFailed && strings.Contains(e.Reason, "message size"))
}

// sizeLimitText finds the limit in RabbitMQ's size refusal.
var sizeLimitText = regexp.MustCompile(`max size (\d+)`)

// sizeLimit returns the broker's max_message_size named by a size
// refusal, when the reason names it.
func sizeLimit(e *amqp091.Error) (int, bool) {
	if !tooLarge(e) {
		return 0, false
	}
	m := sizeLimitText.FindStringSubmatch(e.Reason)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// refusedExchangeText finds the exchange in RabbitMQ's refusals of a
// publish: "access to exchange 'x' in vhost '/' refused for user 'u'",
// "no exchange 'x' in vhost '/'".
var refusedExchangeText = regexp.MustCompile(`exchange '([^']*)' in vhost`)

// refusedExchange returns the exchange a 403 or 404 refusal names.
func refusedExchange(e *amqp091.Error) (string, bool) {
	if e == nil || e.Code != amqp091.AccessRefused && e.Code != amqp091.NotFound {
		return "", false
	}
	m := refusedExchangeText.FindStringSubmatch(e.Reason)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// refusedError is the error of the message id to topic that the broker
// refused by closing the channel with e, classified by reply code.
func refusedError(topic, id string, e *amqp091.Error) error {
	var sentinel error
	switch {
	case tooLarge(e):
		sentinel = bus.ErrTooLarge
	case e.Code == amqp091.AccessRefused:
		sentinel = bus.ErrPermission
	case e.Code == amqp091.NotFound:
		sentinel = bus.ErrNotFound
	default:
		sentinel = bus.ErrInvalid
	}
	return fmt.Errorf("amqp: %w: broker refused message %q to topic %q and closed the channel: %w", sentinel, id, topic, e)
}

// permanent reports errors that no reconnect can fix: the caller's
// settings or rights are wrong.
func permanent(err error) bool {
	return errors.Is(err, bus.ErrPermission) || errors.Is(err, bus.ErrNotFound) ||
		errors.Is(err, bus.ErrInvalid) || errors.Is(err, bus.ErrClosed)
}

// backoff is the reconnect wait schedule of one supervision loop.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur *= 2
		if b.cur > b.max {
			b.cur = b.max
		}
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until done is closed, and reports whether it waited out.
func sleep(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
