package kafka

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/tlsconf"
	"github.com/busline/bus/internal/urlparam"
)

// Scheme is the URL scheme this package registers with driver.Register.
const Scheme = "kafka"

// SASL mechanisms accepted by Config.SASL.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Config holds the settings of a Publisher or Subscriber. Every field but
// Brokers, Username, Password and Logger maps to the URL query parameter
// named in its doc; ParseURL fills it from a URL and the zero value of each
// field means its default.
type Config struct {
	// Brokers lists the bootstrap brokers as host:port (the URL's host part,
	// comma-separated). Required.
	Brokers []string
	// Username and Password authenticate with SASL (the URL's user info).
	// The password never appears in errors or logs.
	Username, Password string
	// SASL is the mechanism: plain, scram-sha-256 or scram-sha-512
	// (URL "sasl"). Default: plain when Username is set, else none.
	SASL string
	// TLS turns on TLS (URL "tls"). Default: false; implied by the
	// TLSCAFile, TLSCertFile and TLSInsecureSkipVerify settings.
	TLS bool
	// TLSCAFile is a PEM file of CAs to trust instead of the system pool
	// (URL "tls_ca_file"). Default: the system pool.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are a PEM client certificate and key for
	// mutual TLS (URL "tls_cert_file", "tls_key_file"). Default: none.
	TLSCertFile, TLSKeyFile string
	// TLSServerName overrides the name checked against the broker's
	// certificate (URL "tls_server_name"). Default: the broker's host.
	TLSServerName string
	// TLSInsecureSkipVerify skips certificate verification; for tests only
	// (URL "tls_insecure_skip_verify"). Default: false.
	TLSInsecureSkipVerify bool
	// ClientID is sent to the brokers (URL "client_id"). Default: "busline".
	ClientID string
	// DialTimeout bounds connecting to a broker, SASL included
	// (URL "dial_timeout"). Default: 10s.
	DialTimeout time.Duration

	// Acks is the acknowledgement Publish waits for: all (every in-sync
	// replica), one (the leader) or none (URL "acks"). Default: all.
	Acks string
	// BatchTimeout is how long a broker with no produce request in flight
	// waits for more messages before it is sent to (URL "batch_timeout").
	// While a request is in flight, messages gather for the next one
	// anyway. Default: 0, send at once.
	BatchTimeout time.Duration
	// BatchSize is the most messages of one partition sent in one produce
	// request (URL "batch_size"). Default: 1000.
	BatchSize int
	// MaxMessageBytes is the largest record (key, value and headers)
	// Publish accepts; larger ones fail with bus.ErrTooLarge without being
	// sent. Keep it at or below the broker's message.max.bytes
	// (URL "max_message_bytes"). Default: 1048576 (1 MiB).
	MaxMessageBytes int
	// Compression is the batch codec: none, gzip, snappy, lz4 or zstd
	// (URL "compression"). Default: none.
	Compression string
	// WriteTimeout bounds one produce request (URL "write_timeout").
	// Default: 10s.
	WriteTimeout time.Duration
	// CreateTopics lets Publish and Subscribe create a missing topic (and a
	// subscription's dead letter topic) with TopicPartitions and
	// TopicReplication. When false, a missing topic is an error wrapping
	// bus.ErrNotFound (URL "create_topics"). Default: false.
	CreateTopics bool
	// TopicPartitions is the partition count of created topics
	// (URL "topic_partitions"). Default: 0, the broker's num.partitions.
	TopicPartitions int
	// TopicReplication is the replication factor of created topics
	// (URL "topic_replication"). Default: 0, the broker's
	// default.replication.factor.
	TopicReplication int

	// SessionTimeout is how long the group coordinator waits for a silent
	// member before it reassigns its partitions (URL "session_timeout").
	// Default: 30s.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often a member tells the coordinator it is
	// alive; it also bounds how fast a member notices a rebalance
	// (URL "heartbeat_interval"). Default: 3s.
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long the coordinator waits for every member
	// to rejoin during a rebalance (URL "rebalance_timeout"). A member
	// rejoins after HandlerGrace at most, so HandlerGrace plus
	// HeartbeatInterval must be below it. Default: 30s.
	RebalanceTimeout time.Duration
	// HandlerGrace is how long handlers still running on partitions a
	// rebalance takes away may go on; then their contexts are cancelled,
	// what they did not finish is left uncommitted for the partition's
	// next owner, and the member rejoins without waiting for them. It is
	// also the grace handlers get when Subscribe's ctx ends
	// (URL "handler_grace"). Default: 5s.
	HandlerGrace time.Duration
	// MaxUncommitted caps the messages of one partition that a
	// subscription has read but not committed: reading the partition
	// pauses at the cap and resumes as offsets are committed. It bounds
	// what a crash sends to the next owner again, and how far reading runs
	// ahead of a slow or retrying message. A broadcast subscriber, which
	// commits nothing, counts from the oldest message not yet handled
	// (URL "max_uncommitted"). Default: 10000.
	MaxUncommitted int
	// CommitInterval is the most time between a handler finishing and its
	// offset being committed (URL "commit_interval"). Default: 100ms.
	CommitInterval time.Duration
	// MaxWait is how long a fetch waits on the broker for new records
	// (URL "max_wait"). Default: 250ms.
	MaxWait time.Duration
	// FetchMaxBytes caps one fetch response of one partition
	// (URL "fetch_max_bytes"). Default: 10485760 (10 MiB).
	FetchMaxBytes int

	// Logger receives the adapter's logs. Not a URL parameter.
	// Default: bus.DiscardLogger() (silent).
	Logger *slog.Logger

	// dial, when set, replaces the network dialer (tests cut connections
	// with it to simulate a crashed process).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ParseURL parses kafka://[user:password@]host:port[,host:port...]/[?params]
// into a Config. Every query parameter is named in Config's field docs;
// unknown parameters are errors wrapping bus.ErrInvalid.
func ParseURL(rawURL string) (Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Config{}, fmt.Errorf("kafka: %w: cannot parse URL %q", bus.ErrInvalid, bus.RedactURL(rawURL))
	}
	return parseURL(u)
}

func parseURL(u *url.URL) (Config, error) {
	var cfg Config
	if u.Scheme != Scheme {
		return cfg, fmt.Errorf("kafka: %w: URL scheme %q is not %q", bus.ErrInvalid, u.Scheme, Scheme)
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			return cfg, fmt.Errorf("kafka: %w: broker %q in %q is not host:port", bus.ErrInvalid, h, bus.RedactURL(u.String()))
		}
		cfg.Brokers = append(cfg.Brokers, h)
	}
	if len(cfg.Brokers) == 0 {
		return cfg, fmt.Errorf("kafka: %w: URL %q names no broker", bus.ErrInvalid, bus.RedactURL(u.String()))
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		return cfg, fmt.Errorf("kafka: %w: URL path %q is not supported (topics are given to Publish and Subscribe)", bus.ErrInvalid, u.Path)
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	p := urlparam.New("kafka", u.Query())
	p.Enum("sasl", &cfg.SASL, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	p.Bool("tls", &cfg.TLS)
	p.File("tls_ca_file", &cfg.TLSCAFile)
	p.File("tls_cert_file", &cfg.TLSCertFile)
	p.File("tls_key_file", &cfg.TLSKeyFile)
	p.String("tls_server_name", &cfg.TLSServerName)
	p.Bool("tls_insecure_skip_verify", &cfg.TLSInsecureSkipVerify)
	p.String("client_id", &cfg.ClientID)
	p.Duration("dial_timeout", &cfg.DialTimeout)
	p.Enum("acks", &cfg.Acks, "all", "one", "none")
	p.Duration("batch_timeout", &cfg.BatchTimeout)
	p.Int("batch_size", &cfg.BatchSize, 1)
	p.Int("max_message_bytes", &cfg.MaxMessageBytes, 1)
	p.Enum("compression", &cfg.Compression, "none", "gzip", "snappy", "lz4", "zstd")
	p.Duration("write_timeout", &cfg.WriteTimeout)
	p.Bool("create_topics", &cfg.CreateTopics)
	p.Int("topic_partitions", &cfg.TopicPartitions, 0)
	p.Int("topic_replication", &cfg.TopicReplication, 0)
	p.Duration("session_timeout", &cfg.SessionTimeout)
	p.Duration("heartbeat_interval", &cfg.HeartbeatInterval)
	p.Duration("rebalance_timeout", &cfg.RebalanceTimeout)
	p.Duration("handler_grace", &cfg.HandlerGrace)
	p.Int("max_uncommitted", &cfg.MaxUncommitted, 1)
	p.Duration("commit_interval", &cfg.CommitInterval)
	p.Duration("max_wait", &cfg.MaxWait)
	p.Int("fetch_max_bytes", &cfg.FetchMaxBytes, 1)
	if err := p.Err(); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

// Defaults that validate compares against when a field is left zero.
const (
	defaultHeartbeatInterval = 3 * time.Second
	defaultRebalanceTimeout  = 30 * time.Second
	defaultHandlerGrace      = 5 * time.Second
)

// withDefaults returns cfg with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.SASL == "" && c.Username != "" {
		c.SASL = SASLPlain
	}
	if c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSInsecureSkipVerify || c.TLSServerName != "" {
		c.TLS = true
	}
	c.ClientID = cmp.Or(c.ClientID, "busline")
	c.Acks = cmp.Or(c.Acks, "all")
	c.Compression = cmp.Or(c.Compression, "none")
	c.DialTimeout = cmp.Or(c.DialTimeout, 10*time.Second)
	c.BatchSize = cmp.Or(c.BatchSize, 1000)
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, 1<<20)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, 10*time.Second)
	c.SessionTimeout = cmp.Or(c.SessionTimeout, 30*time.Second)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, defaultHeartbeatInterval)
	c.RebalanceTimeout = cmp.Or(c.RebalanceTimeout, defaultRebalanceTimeout)
	c.HandlerGrace = cmp.Or(c.HandlerGrace, defaultHandlerGrace)
	c.MaxUncommitted = cmp.Or(c.MaxUncommitted, 10000)
	c.CommitInterval = cmp.Or(c.CommitInterval, 100*time.Millisecond)
	c.MaxWait = cmp.Or(c.MaxWait, 250*time.Millisecond)
	c.FetchMaxBytes = cmp.Or(c.FetchMaxBytes, 10<<20)
	c.Logger = cmp.Or(c.Logger, bus.DiscardLogger())
	return c
}

// validate reports settings that cannot work together.
func (c Config) validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("kafka: %w: no brokers configured", bus.ErrInvalid)
	}
	switch c.SASL {
	case "", SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		return fmt.Errorf("kafka: %w: unknown SASL mechanism %q", bus.ErrInvalid, c.SASL)
	}
	if c.SASL != "" && c.Username == "" {
		return fmt.Errorf("kafka: %w: SASL %s needs a user name (kafka://user:password@host:port)", bus.ErrInvalid, c.SASL)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return fmt.Errorf("kafka: %w: tls_cert_file and tls_key_file go together", bus.ErrInvalid)
	}
	if _, err := compressionCodec(c.Compression); err != nil {
		return err
	}
	if _, err := requiredAcks(c.Acks); err != nil {
		return err
	}
	if c.HeartbeatInterval != 0 && c.SessionTimeout != 0 && c.HeartbeatInterval >= c.SessionTimeout {
		return fmt.Errorf("kafka: %w: heartbeat_interval %v must be below session_timeout %v", bus.ErrInvalid, c.HeartbeatInterval, c.SessionTimeout)
	}
	if c.HandlerGrace < 0 || c.MaxUncommitted < 0 {
		return fmt.Errorf("kafka: %w: handler_grace and max_uncommitted cannot be negative", bus.ErrInvalid)
	}
	// A member notices a rebalance within a heartbeat, lets its handlers
	// go on for the grace, and must have rejoined before the coordinator
	// gives up on it.
	grace := cmp.Or(c.HandlerGrace, defaultHandlerGrace)
	hb := cmp.Or(c.HeartbeatInterval, defaultHeartbeatInterval)
	if rt := cmp.Or(c.RebalanceTimeout, defaultRebalanceTimeout); grace+hb >= rt {
		return fmt.Errorf("kafka: %w: handler_grace %v plus heartbeat_interval %v must be below rebalance_timeout %v",
			bus.ErrInvalid, grace, hb, rt)
	}
	return nil
}

func compressionCodec(name string) (kafkago.Compression, error) {
	switch name {
	case "", "none":
		return 0, nil
	case "gzip":
		return kafkago.Gzip, nil
	case "snappy":
		return kafkago.Snappy, nil
	case "lz4":
		return kafkago.Lz4, nil
	case "zstd":
		return kafkago.Zstd, nil
	}
	return 0, fmt.Errorf("kafka: %w: unknown compression %q", bus.ErrInvalid, name)
}

func requiredAcks(name string) (kafkago.RequiredAcks, error) {
	switch name {
	case "", "all":
		return kafkago.RequireAll, nil
	case "one":
		return kafkago.RequireOne, nil
	case "none":
		return kafkago.RequireNone, nil
	}
	return 0, fmt.Errorf("kafka: %w: unknown acks %q (want all, one or none)", bus.ErrInvalid, name)
}

// conn is what a Config resolves to: the TLS config, SASL mechanism and
// dial function shared by the publisher's transport and the readers' dialer.
type conn struct {
	cfg  Config
	tls  *tls.Config
	sasl sasl.Mechanism
}

func newConn(cfg Config) (*conn, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &conn{cfg: cfg}
	if cfg.TLS {
		tc, err := tlsconf.Files{CAFile: cfg.TLSCAFile, CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile,
			ServerName: cfg.TLSServerName, InsecureSkipVerify: cfg.TLSInsecureSkipVerify}.Config("kafka")
		if err != nil {
			return nil, err
		}
		c.tls = tc
	}
	switch cfg.SASL {
	case SASLPlain:
		c.sasl = plain.Mechanism{Username: cfg.Username, Password: cfg.Password}
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if cfg.SASL == SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, cfg.Username, cfg.Password)
		if err != nil {
			return nil, fmt.Errorf("kafka: %w: SASL %s: %v", bus.ErrInvalid, cfg.SASL, err)
		}
		c.sasl = m
	}
	return c, nil
}

func (c *conn) dialFunc() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.cfg.dial != nil {
		return c.cfg.dial
	}
	d := &net.Dialer{Timeout: c.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return d.DialContext
}

// transport returns a new transport for publishers and admin requests.
func (c *conn) transport() *kafkago.Transport {
	return &kafkago.Transport{
		Dial:        c.dialFunc(),
		DialTimeout: c.cfg.DialTimeout,
		// Short, so that a publisher finds a partition's new leader within
		// its retries when a broker dies (metadata is one small request).
		MetadataTTL: time.Second,
		ClientID:    c.cfg.ClientID,
		TLS:         c.tls,
		SASL:        c.sasl,
	}
}

// dialer returns the dialer of readers and consumer groups.
func (c *conn) dialer() *kafkago.Dialer {
	return &kafkago.Dialer{
		ClientID:      c.cfg.ClientID,
		DialFunc:      c.dialFunc(),
		Timeout:       c.cfg.DialTimeout,
		DualStack:     true,
		TLS:           c.tls,
		SASLMechanism: c.sasl,
	}
}

func (c *conn) addr() net.Addr { return kafkago.TCP(c.cfg.Brokers...) }
