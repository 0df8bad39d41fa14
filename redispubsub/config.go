package redispubsub

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
	"github.com/busline/bus/internal/opener"
	"github.com/busline/bus/internal/tlsconf"
	"github.com/busline/bus/internal/urlparam"
)

// Scheme is the plain-TCP URL scheme this package registers with bus.
// SchemeTLS is its TLS twin.
const (
	Scheme    = "redis"
	SchemeTLS = "rediss"
)

// Formats for Config.Format.
const (
	// FormatStructured sends each message as one CloudEvents 1.0
	// structured-mode JSON document (application/cloudevents+json).
	FormatStructured = "structured"
	// FormatRaw sends Body alone; the other fields of the message are not
	// sent. Subscribers in raw mode deliver the payload untouched.
	FormatRaw = "raw"
)

// Config holds every setting of a Publisher or Subscriber. Fields map one to
// one onto URL query parameters (named in brackets), except where a field
// says it cannot be set by URL. The zero value of a field means its default.
type Config struct {
	// Addr is the host:port of the Redis server, or of the first cluster
	// seed node (the URL's host). Default: 127.0.0.1:6379.
	Addr string
	// Addrs lists more cluster seed nodes, comma separated in the URL
	// [addrs]. Only allowed with Cluster. Default: none.
	Addrs []string
	// Username and Password authenticate (Redis 6 ACL, or the legacy
	// requirepass when Username is empty). They come from the URL's user
	// info and never appear in errors or logs.
	Username string
	Password string
	// DB is the database number (the URL path, "/3"). It matters only for
	// the dead letter lists: pub/sub channels are global to the server.
	// Must be 0 with Cluster. Default: 0.
	DB int
	// TLS connects with TLS (the rediss:// scheme). Default: false.
	TLS bool
	// TLSCAFile is a PEM file of CA certificates that verify the server
	// [tls_ca_file]. Default: the system roots.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are a PEM client certificate and key for
	// mutual TLS [tls_cert_file, tls_key_file]. Default: none.
	TLSCertFile string
	TLSKeyFile  string
	// TLSServerName overrides the name the server certificate is verified
	// against [tls_server_name]. Default: the host of Addr.
	TLSServerName string
	// TLSInsecureSkipVerify turns off server certificate verification
	// [tls_insecure_skip_verify]. For tests only. Default: false.
	TLSInsecureSkipVerify bool

	// Cluster talks to a Redis Cluster through its seed nodes (Addr and
	// Addrs) [cluster]. Default: false.
	Cluster bool
	// Sharded uses sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+): a
	// channel lives on the shard that owns its hash slot, so pub/sub traffic
	// scales with the cluster instead of being copied to every node.
	// Patterns are not available in sharded mode [sharded].
	// Default: the value of Cluster.
	Sharded *bool

	// Format is how messages are encoded on the wire [format]:
	// FormatStructured or FormatRaw. Publisher and subscribers of one
	// channel should agree. Default: FormatStructured.
	Format string
	// MaxBody is the largest Body Publish accepts, in bytes [max_body]. It
	// stays well under Redis's default pub/sub output buffer hard limit
	// (32 MiB), beyond which Redis disconnects every subscriber of the
	// channel. Default: 8 MiB.
	MaxBody int

	// BufferSize is how many received messages a subscription holds
	// between the connection's reader and the handlers [buffer_size].
	// Default: 1024.
	BufferSize int
	// BufferWait is how long the reader waits for room when the buffer is
	// full before it drops the message [buffer_wait]. While the buffer
	// stays full after such a drop, further messages are dropped at once,
	// so the reader never falls behind the connection for long. Drops are
	// counted in Stats and logged. Default: 1s.
	BufferWait time.Duration
	// PingInterval is how long a subscription's connection may stay silent
	// before it is pinged; a ping unanswered for another interval counts
	// the connection as dead and it is replaced [ping_interval].
	// Default: 15s.
	PingInterval time.Duration
	// MaxReconnectBackoff caps the wait between attempts to reconnect a
	// subscription; waits start at 50ms and double [max_reconnect_backoff].
	// Default: 5s.
	MaxReconnectBackoff time.Duration
	// DeadLetterMaxLen caps each dead letter list, dropping its oldest
	// entries; 0 keeps everything [dead_letter_max_len]. Default: 0.
	DeadLetterMaxLen int

	// ClientName is set on every connection with CLIENT SETNAME, so that
	// CLIENT LIST shows who is who [client_name]. Default: none.
	ClientName string
	// DialTimeout bounds connecting [dial_timeout]. Default: 5s.
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound a command's reply and write
	// [read_timeout, write_timeout]. Default: 3s each.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolSize is the number of pooled connections per node used for
	// publishing and dead letters (each subscription has a connection of its
	// own) [pool_size]. Default: go-redis's default, 10 per CPU.
	PoolSize int

	// Logger receives the adapter's logs (reconnects, gaps, drops). It
	// cannot be set by URL. Default: bus.DiscardLogger(), silent.
	Logger *slog.Logger
	// TLSConfig, when set, is used as is instead of the TLS* fields. It
	// cannot be set by URL. Default: nil.
	TLSConfig *tls.Config
}

// Defaults.
const (
	DefaultAddr                = "127.0.0.1:6379"
	DefaultMaxBody             = 8 << 20
	DefaultBufferSize          = 1024
	DefaultBufferWait          = time.Second
	DefaultPingInterval        = 15 * time.Second
	DefaultMaxReconnectBackoff = 5 * time.Second
	DefaultDialTimeout         = 5 * time.Second
	DefaultIOTimeout           = 3 * time.Second
)

// ParseURL parses a redis:// or rediss:// URL into a Config:
//
//	redis://[[user]:password@]host[:port][/db][?param=value&...]
//
// Every query parameter is named in Config's field docs; an unknown one,
// or one given twice, is an error wrapping bus.ErrInvalid. Errors never
// contain the password.
func ParseURL(rawURL string) (Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Config{}, fmt.Errorf("redispubsub: %w: cannot parse URL %q", bus.ErrInvalid, bus.RedactURL(rawURL))
	}
	return fromURL(u)
}

func fromURL(u *url.URL) (Config, error) {
	var cfg Config
	switch u.Scheme {
	case Scheme:
	case SchemeTLS:
		cfg.TLS = true
	default:
		return cfg, fmt.Errorf("redispubsub: %w: URL scheme %q is not %s or %s", bus.ErrInvalid, u.Scheme, Scheme, SchemeTLS)
	}
	if u.Opaque != "" {
		return cfg, fmt.Errorf("redispubsub: %w: URL %q must be of the form %s://host:port/db", bus.ErrInvalid, bus.RedactURL(u.String()), u.Scheme)
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	if h := u.Host; h != "" {
		host, port, err := net.SplitHostPort(h)
		if err != nil { // no port
			host, port = strings.Trim(h, "[]"), "6379"
		}
		if host == "" {
			host = "127.0.0.1"
		}
		cfg.Addr = net.JoinHostPort(host, port)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		db, err := strconv.Atoi(p)
		if err != nil || db < 0 {
			return cfg, fmt.Errorf("redispubsub: %w: URL path %q is not a database number", bus.ErrInvalid, u.Path)
		}
		cfg.DB = db
	}
	q := urlparam.New("redispubsub", u.Query())
	var addrs string
	q.String("addrs", &addrs)
	q.Bool("cluster", &cfg.Cluster)
	var sharded bool
	if _, ok := u.Query()["sharded"]; ok {
		q.Bool("sharded", &sharded)
		cfg.Sharded = &sharded
	} else {
		q.Bool("sharded", &sharded) // marks it known
	}
	q.Enum("format", &cfg.Format, FormatStructured, FormatRaw)
	q.Int("max_body", &cfg.MaxBody, 1)
	q.Int("buffer_size", &cfg.BufferSize, 1)
	q.Duration("buffer_wait", &cfg.BufferWait)
	q.Duration("ping_interval", &cfg.PingInterval)
	q.Duration("max_reconnect_backoff", &cfg.MaxReconnectBackoff)
	q.Int("dead_letter_max_len", &cfg.DeadLetterMaxLen, 0)
	q.String("client_name", &cfg.ClientName)
	q.Duration("dial_timeout", &cfg.DialTimeout)
	q.Duration("read_timeout", &cfg.ReadTimeout)
	q.Duration("write_timeout", &cfg.WriteTimeout)
	q.Int("pool_size", &cfg.PoolSize, 1)
	q.File("tls_ca_file", &cfg.TLSCAFile)
	q.File("tls_cert_file", &cfg.TLSCertFile)
	q.File("tls_key_file", &cfg.TLSKeyFile)
	q.String("tls_server_name", &cfg.TLSServerName)
	q.Bool("tls_insecure_skip_verify", &cfg.TLSInsecureSkipVerify)
	if err := q.Err(); err != nil {
		return cfg, err
	}
	if addrs != "" {
		for _, a := range strings.Split(addrs, ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.Addrs = append(cfg.Addrs, a)
			}
		}
	}
	return cfg, cfg.withDefaults().validate()
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.Sharded == nil {
		s := cfg.Cluster
		cfg.Sharded = &s
	}
	cfg.Addr = cmp.Or(cfg.Addr, DefaultAddr)
	cfg.Format = cmp.Or(cfg.Format, FormatStructured)
	cfg.MaxBody = cmp.Or(cfg.MaxBody, DefaultMaxBody)
	cfg.BufferSize = cmp.Or(cfg.BufferSize, DefaultBufferSize)
	cfg.BufferWait = cmp.Or(cfg.BufferWait, DefaultBufferWait)
	cfg.PingInterval = cmp.Or(cfg.PingInterval, DefaultPingInterval)
	cfg.MaxReconnectBackoff = cmp.Or(cfg.MaxReconnectBackoff, DefaultMaxReconnectBackoff)
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, DefaultDialTimeout)
	cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, DefaultIOTimeout)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, DefaultIOTimeout)
	cfg.Logger = cmp.Or(cfg.Logger, bus.DiscardLogger())
	return cfg
}

func (cfg Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("redispubsub: %w: "+format, append([]any{bus.ErrInvalid}, args...)...)
	}
	switch {
	case cfg.Format != FormatStructured && cfg.Format != FormatRaw:
		return bad("format %q is not %s or %s", cfg.Format, FormatStructured, FormatRaw)
	case len(cfg.Addrs) > 0 && !cfg.Cluster:
		return bad("addrs lists cluster seed nodes; add cluster=true")
	case cfg.Cluster && cfg.DB != 0:
		return bad("a Redis Cluster has only database 0, not %d", cfg.DB)
	case cfg.MaxBody < 0 || cfg.BufferSize < 0 || cfg.DeadLetterMaxLen < 0 || cfg.PoolSize < 0:
		return bad("max_body, buffer_size, dead_letter_max_len and pool_size must not be negative")
	case cfg.BufferWait < 0 || cfg.PingInterval < 0 || cfg.MaxReconnectBackoff < 0 ||
		cfg.DialTimeout < 0 || cfg.ReadTimeout < 0 || cfg.WriteTimeout < 0:
		return bad("durations must not be negative")
	case (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == ""):
		return bad("tls_cert_file and tls_key_file go together")
	}
	return nil
}

// tlsConfig builds the TLS settings, or returns nil for plain TCP.
func (cfg Config) tlsConfig() (*tls.Config, error) {
	if cfg.TLSConfig != nil {
		return cfg.TLSConfig, nil
	}
	if !cfg.TLS {
		return nil, nil
	}
	name := cfg.TLSServerName
	if name == "" {
		if host, _, err := net.SplitHostPort(cfg.Addr); err == nil {
			name = host
		}
	}
	return tlsconf.Files{CAFile: cfg.TLSCAFile, CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile,
		ServerName: name, InsecureSkipVerify: cfg.TLSInsecureSkipVerify}.Config("redispubsub")
}

// noRetries turns off go-redis's retries of a command whose connection
// failed. Such a command may have been carried out with only its reply
// lost, and sent again it would reach the subscribers twice (a pipeline
// would be sent again whole); the caller gets the error instead
// (TestLostReplyIsNotResent). A pooled connection the server closed while
// idle is still replaced before use: go-redis checks it when taken from
// the pool.
const noRetries = -1

// newClient builds the go-redis client cfg describes and checks that the
// server answers, so that bad credentials and unreachable hosts surface at
// once. cfg must have its defaults.
func newClient(ctx context.Context, cfg Config) (goredis.UniversalClient, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	maint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	var c goredis.UniversalClient
	if cfg.Cluster {
		c = goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs:                    append([]string{cfg.Addr}, cfg.Addrs...),
			ClientName:               cfg.ClientName,
			Username:                 cfg.Username,
			Password:                 cfg.Password,
			TLSConfig:                tc,
			DialTimeout:              cfg.DialTimeout,
			ReadTimeout:              cfg.ReadTimeout,
			WriteTimeout:             cfg.WriteTimeout,
			PoolSize:                 cfg.PoolSize,
			MaxRetries:               noRetries,
			DisableIdentity:          true,
			MaintNotificationsConfig: maint,
		})
	} else {
		c = goredis.NewClient(&goredis.Options{
			Addr:                     cfg.Addr,
			ClientName:               cfg.ClientName,
			Username:                 cfg.Username,
			Password:                 cfg.Password,
			DB:                       cfg.DB,
			TLSConfig:                tc,
			DialTimeout:              cfg.DialTimeout,
			ReadTimeout:              cfg.ReadTimeout,
			WriteTimeout:             cfg.WriteTimeout,
			PoolSize:                 cfg.PoolSize,
			MaxRetries:               noRetries,
			DisableIdentity:          true,
			MaintNotificationsConfig: maint,
		})
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+cfg.ReadTimeout)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, connectErr(cfg, err)
	}
	return c, nil
}

// where names the server(s) for errors and logs; it holds no credentials.
func (cfg Config) where() string {
	if cfg.Cluster {
		return "cluster " + strings.Join(append([]string{cfg.Addr}, cfg.Addrs...), ",")
	}
	return cfg.Addr
}

func init() {
	o := opener.Funcs[Config, *Publisher, *Subscriber]{Parse: fromURL, NewPublisher: NewPublisher, NewSubscriber: NewSubscriber}
	driver.Register(Scheme, o)
	driver.Register(SchemeTLS, o)
}
