package redispubsub_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/testbroker"
	"github.com/busline/bus/redispubsub"
)

// startTLSRedis starts a redis-server of the test's own that speaks only
// TLS on a free loopback port and requires client certificates; it is
// killed when the test ends. A missing redis-server binary fails the test.
func startTLSRedis(t *testing.T, f testbroker.TLSFiles) string {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server binary not found (apt-get install redis-server): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(server, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1",
		"--tls-cert-file", f.ServerCert, "--tls-key-file", f.ServerKey, "--tls-ca-cert-file", f.CA,
		"--tls-auth-clients", "yes", "--save", "", "--appendonly", "no",
		"--dir", f.Dir, "--logfile", filepath.Join(f.Dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server with TLS: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS redis-server on %s did not come up: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTLS runs the adapter against a Redis that speaks only TLS and
// requires client certificates: rediss:// with a CA file and a client
// certificate works end to end; a missing client certificate, a server
// certificate from an unknown CA, redis:// to the TLS port and rediss:// to
// a plain port fail at NewPublisher with bus.ErrUnreachable and say why.
func TestTLS(t *testing.T) {
	f := testbroker.NewTLSFiles(t)
	addr := startTLSRedis(t, f)
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "rediss://" + addr + "/?" + v.Encode()
	}
	parse := func(u string) redispubsub.Config {
		t.Helper()
		cfg, err := redispubsub.ParseURL(u)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", u, err)
		}
		cfg.DialTimeout, cfg.ReadTimeout = 3*time.Second, time.Second
		return cfg
	}

	t.Run("mutual TLS", func(t *testing.T) {
		cfg := parse(q("tls_ca_file", f.CA, "tls_cert_file", f.ClientCert, "tls_key_file", f.ClientKey))
		topic := uniqueTopic(t)
		in := newInbox()
		start(t, newSubscriber(t, cfg), topic, in.handler)
		if err := newPublisher(t, cfg).Publish(context.Background(), topic, &bus.Message{ID: "over-tls", Body: []byte("secret")}); err != nil {
			t.Fatal(err)
		}
		if m := in.wait(t, 1)[0]; m.ID != "over-tls" || string(m.Body) != "secret" {
			t.Fatalf("received %q %q", m.ID, m.Body)
		}
	})

	other := testbroker.NewTLSFiles(t)
	for _, c := range []struct {
		name, url, want string
	}{
		{"no client certificate", q("tls_ca_file", f.CA), "certificate required"},
		{"unknown CA", q("tls_ca_file", other.CA, "tls_cert_file", f.ClientCert, "tls_key_file", f.ClientKey), "unknown authority"},
		{"plain to a TLS port", "redis://" + addr + "/", "use rediss://"},
		{"TLS to a plain port", "rediss://" + redisAddr + "/?tls_ca_file=" + url.QueryEscape(f.CA), "use redis://"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p, err := redispubsub.NewPublisher(ctx, parse(c.url))
			if err == nil {
				_ = p.Close()
				t.Fatal("NewPublisher succeeded")
			}
			if !errors.Is(err, bus.ErrUnreachable) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewPublisher: %v (want bus.ErrUnreachable mentioning %q)", err, c.want)
			}
			t.Logf("%s: %v", c.name, err)
		})
	}
}
