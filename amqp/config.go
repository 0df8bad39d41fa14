package amqp

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/tlsconf"
	"github.com/busline/bus/internal/urlparam"
)

// Scheme is the URL scheme of plain AMQP connections; SchemeTLS is the one
// of TLS connections. Both are registered with driver.Register.
const (
	Scheme    = "amqp"
	SchemeTLS = "amqps"
)

// Topology values for Config.Topology.
const (
	// TopologyExchange gives every topic a durable fanout exchange, every
	// group a durable queue bound to it and every broadcast subscription an
	// expiring queue of its own. It supports groups and broadcast.
	TopologyExchange = "exchange"
	// TopologyWorkQueue is the classic work queue: a durable queue named
	// after the topic on the default exchange. The queue is the topic's
	// only group; there is no broadcast.
	TopologyWorkQueue = "workqueue"
)

// Queue types for Config.QueueType.
const (
	QueueClassic = "classic"
	QueueQuorum  = "quorum"
)

// DefaultMaxBodyBytes is RabbitMQ 4's default max_message_size (16 MiB).
// RabbitMQ 3.x allowed 128 MiB by default.
const DefaultMaxBodyBytes = 16 << 20

// Config configures a Publisher or Subscriber. Every field but Logger maps
// to the URL query parameter named in its doc; ParseURL fills it from a
// URL and leaves the defaults of the fields the URL does not set.
type Config struct {
	// URL is the broker address with credentials and vhost, without the
	// query parameters below: amqp://user:password@host:port/vhost.
	URL string
	// Addrs are more nodes of the same cluster, as host:port (addrs=, comma
	// separated). A connection is made to the URL's host or, when that
	// does not answer, to each of these in turn, with the URL's
	// credentials, vhost and TLS settings; a lost connection is made again
	// starting with the node that answered last. Default: none.
	Addrs []string

	// Topology is TopologyExchange or TopologyWorkQueue (topology=).
	// Default: exchange.
	Topology string
	// QueueType is the type of the durable queues declared for groups and
	// dead letters, QueueClassic or QueueQuorum (queue_type=). Broadcast
	// queues are always classic, durable and expiring (BroadcastExpires):
	// they hold only what one subscriber has not read yet.
	// Default: classic.
	QueueType string

	// BroadcastExpires is how long a broadcast subscription's queue is kept
	// without a consumer (broadcast_expires=): long enough that what is
	// published while the subscriber reconnects waits for it, short enough
	// that the queue of a process that died goes away. A subscription that
	// ends deletes its queue at once. Default: 1m.
	BroadcastExpires time.Duration

	// Heartbeat is the AMQP heartbeat interval (heartbeat=).
	// Default: 10s.
	Heartbeat time.Duration
	// DialTimeout bounds the TCP connect, TLS and AMQP handshakes of one
	// connection attempt (dial_timeout=). Default: 30s.
	DialTimeout time.Duration
	// ReconnectMin is the first wait before re-establishing a lost
	// connection or channel; it doubles after each failure up to
	// ReconnectMax (reconnect_min=). Default: 100ms.
	ReconnectMin time.Duration
	// ReconnectMax caps the reconnect wait (reconnect_max=). Default: 5s.
	ReconnectMax time.Duration

	// MaxInFlight caps the published messages awaiting a confirm on one
	// publisher; Publish waits when it is reached (max_in_flight=).
	// Default: 10000.
	MaxInFlight int
	// MaxBodyBytes is the largest body Publish accepts; larger ones fail
	// with bus.ErrTooLarge before they are sent (max_body_bytes=). Match
	// the broker's max_message_size: the default is RabbitMQ 4's; on
	// RabbitMQ 3.x (128 MiB by default) set it to publish larger bodies. A
	// body under this limit that the broker still refuses fails its own
	// Publish with bus.ErrTooLarge and the broker's reason.
	// Default: 16777216 (16 MiB).
	MaxBodyBytes int
	// ConnectionName is shown in the management UI (connection_name=).
	// Default: busline.
	ConnectionName string

	// TLSCAFile is a PEM file of CA certificates to trust instead of the system
	// pool, for amqps URLs (tls_ca_file=). Default: the system pool.
	TLSCAFile string
	// TLSCertFile is a PEM client certificate file for mutual TLS; it needs
	// TLSKeyFile (tls_cert_file=). Default: none.
	TLSCertFile string
	// TLSKeyFile is the PEM private key file of TLSCertFile (tls_key_file=).
	// Default: none.
	TLSKeyFile string
	// TLSServerName overrides the host name checked against the server's
	// certificate (tls_server_name=). Default: the URL's host.
	TLSServerName string

	// Logger receives connection and subscription logs. It has no URL
	// parameter. Default: silent.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Topology = cmp.Or(c.Topology, TopologyExchange)
	c.QueueType = cmp.Or(c.QueueType, QueueClassic)
	c.Heartbeat = cmp.Or(c.Heartbeat, 10*time.Second)
	c.BroadcastExpires = cmp.Or(c.BroadcastExpires, time.Minute)
	c.DialTimeout = cmp.Or(c.DialTimeout, 30*time.Second)
	c.ReconnectMin = cmp.Or(c.ReconnectMin, 100*time.Millisecond)
	c.ReconnectMax = cmp.Or(c.ReconnectMax, 5*time.Second)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, 10000)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.ConnectionName = cmp.Or(c.ConnectionName, "busline")
	c.Logger = cmp.Or(c.Logger, bus.DiscardLogger())
	return c
}

// validate checks a Config with defaults applied.
func (c Config) validate() error {
	if c.URL == "" {
		return fmt.Errorf("amqp: %w: Config.URL is empty", bus.ErrInvalid)
	}
	if _, err := amqp091.ParseURI(c.URL); err != nil {
		return fmt.Errorf("amqp: %w: URL %q: %w", bus.ErrInvalid, bus.RedactURL(c.URL), err)
	}
	switch c.Topology {
	case TopologyExchange, TopologyWorkQueue:
	default:
		return fmt.Errorf("amqp: %w: unknown topology %q (want %s or %s)", bus.ErrInvalid, c.Topology, TopologyExchange, TopologyWorkQueue)
	}
	switch c.QueueType {
	case QueueClassic, QueueQuorum:
	default:
		return fmt.Errorf("amqp: %w: unknown queue type %q (want %s or %s)", bus.ErrInvalid, c.QueueType, QueueClassic, QueueQuorum)
	}
	if c.BroadcastExpires < time.Second || c.BroadcastExpires > 24*time.Hour {
		return fmt.Errorf("amqp: %w: broadcast_expires %v must be between 1s and 24h", bus.ErrInvalid, c.BroadcastExpires)
	}
	if c.MaxInFlight < 1 || c.MaxBodyBytes < 1 || c.Heartbeat < 0 || c.DialTimeout < 0 || c.ReconnectMin < 0 || c.ReconnectMax < c.ReconnectMin {
		return fmt.Errorf("amqp: %w: max_in_flight and max_body_bytes must be positive, durations not negative, reconnect_max >= reconnect_min", bus.ErrInvalid)
	}
	for _, a := range c.Addrs {
		host, port, err := net.SplitHostPort(a)
		if _, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil {
			return fmt.Errorf("amqp: %w: addrs: %q is not host:port", bus.ErrInvalid, a)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return fmt.Errorf("amqp: %w: tls_cert_file and tls_key_file go together", bus.ErrInvalid)
	}
	return nil
}

// ParseURL reads a Config from an amqp:// or amqps:// URL. The user, password,
// host, port and vhost are passed to the broker; the query parameters set
// the fields of Config whose docs name them. An unknown or malformed
// parameter is an error wrapping bus.ErrInvalid.
func ParseURL(rawURL string) (Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Config{}, fmt.Errorf("amqp: %w: cannot parse URL %q", bus.ErrInvalid, bus.RedactURL(rawURL))
	}
	return parseURL(u)
}

func parseURL(u *url.URL) (Config, error) {
	if u.Scheme != Scheme && u.Scheme != SchemeTLS {
		return Config{}, fmt.Errorf("amqp: %w: URL scheme %q is not %s or %s", bus.ErrInvalid, u.Scheme, Scheme, SchemeTLS)
	}
	var c Config
	p := urlparam.New("amqp", u.Query())
	p.Enum("topology", &c.Topology, TopologyExchange, TopologyWorkQueue)
	p.Enum("queue_type", &c.QueueType, QueueClassic, QueueQuorum)
	p.Duration("heartbeat", &c.Heartbeat)
	p.Duration("broadcast_expires", &c.BroadcastExpires)
	p.Duration("dial_timeout", &c.DialTimeout)
	p.Duration("reconnect_min", &c.ReconnectMin)
	p.Duration("reconnect_max", &c.ReconnectMax)
	p.Int("max_in_flight", &c.MaxInFlight, 1)
	p.Int("max_body_bytes", &c.MaxBodyBytes, 1)
	p.String("connection_name", &c.ConnectionName)
	var addrs string
	p.String("addrs", &addrs)
	p.File("tls_ca_file", &c.TLSCAFile)
	p.File("tls_cert_file", &c.TLSCertFile)
	p.File("tls_key_file", &c.TLSKeyFile)
	p.String("tls_server_name", &c.TLSServerName)
	if err := p.Err(); err != nil {
		return Config{}, err
	}
	if u.Scheme == Scheme && (c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSServerName != "") {
		return Config{}, fmt.Errorf("amqp: %w: tls_* parameters need an amqps:// URL", bus.ErrInvalid)
	}
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Addrs = append(c.Addrs, a)
		}
	}
	base := *u
	base.RawQuery = ""
	base.ForceQuery = false
	c.URL = base.String()
	return c, nil
}

// tlsConfig builds the TLS settings of an amqps connection, or returns nil
// for amqp.
func (c Config) tlsConfig() (*tls.Config, error) {
	uri, err := amqp091.ParseURI(c.URL)
	if err != nil {
		return nil, fmt.Errorf("amqp: %w: URL %q: %w", bus.ErrInvalid, bus.RedactURL(c.URL), err)
	}
	if uri.Scheme != SchemeTLS {
		return nil, nil
	}
	name := uri.Host
	if c.TLSServerName != "" {
		name = c.TLSServerName
	}
	return tlsconf.Files{CAFile: c.TLSCAFile, CertFile: c.TLSCertFile, KeyFile: c.TLSKeyFile, ServerName: name}.Config("amqp")
}
