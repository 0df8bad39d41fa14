package amqp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
	"github.com/busline/bus/internal/testbroker"
)

// tlsFront terminates TLS on a free loopback port, requiring a client
// certificate from the test CA, and forwards the plain stream to the
// broker on 127.0.0.1:5672, as a TLS-terminating load balancer in front
// of RabbitMQ does. It stops when the test ends.
func tlsFront(t *testing.T, f testbroker.TLSFiles) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				_ = c.SetDeadline(time.Time{})
				b, err := net.DialTimeout("tcp", "127.0.0.1:5672", 5*time.Second)
				if err != nil {
					return
				}
				defer b.Close()
				mu.Lock()
				conns = append(conns, c, b)
				mu.Unlock()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// TestTLS connects over amqps:// with a CA file and a client certificate
// through a TLS front to the real broker, and checks that each way of
// getting TLS wrong fails at NewPublisher with bus.ErrUnreachable, says
// why, and does not show the password.
func TestTLS(t *testing.T) {
	f := testbroker.NewTLSFiles(t)
	addr := tlsFront(t, f)
	const secret = "guest"
	u := func(scheme string, kv ...string) string {
		v := url.Values{"topology": {"workqueue"}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return scheme + "://guest:" + secret + "@" + addr + "/?" + v.Encode()
	}
	parse := func(t *testing.T, s string) amqp.Config {
		t.Helper()
		cfg, err := amqp.ParseURL(s)
		if err != nil {
			t.Fatalf("ParseURL: %v", err)
		}
		cfg.DialTimeout = 5 * time.Second
		return cfg
	}

	t.Run("mutual TLS", func(t *testing.T) {
		cfg := parse(t, u("amqps", "tls_ca_file", f.CA, "tls_cert_file", f.ClientCert, "tls_key_file", f.ClientKey))
		topic := uniqueTopic(t)
		c := newCollector()
		subscribe(t, newSubscriber(t, cfg), topic, c.handle, bus.Group(topic))
		if err := newPublisher(t, cfg).Publish(ctxT(t), topic, &bus.Message{ID: "over-tls", Body: []byte("secret")}); err != nil {
			t.Fatal(err)
		}
		c.waitFor(t, testTimeout, "the message sent over TLS", func() bool { return c.distinct() == 1 })
		if m := c.msgs[0]; m.ID != "over-tls" || string(m.Body) != "secret" {
			t.Fatalf("received %q %q", m.ID, m.Body)
		}
	})

	other := testbroker.NewTLSFiles(t)
	for _, c := range []struct{ name, url, want string }{
		{"no client certificate", u("amqps", "tls_ca_file", f.CA), "certificate required"},
		{"unknown CA", u("amqps", "tls_ca_file", other.CA, "tls_cert_file", f.ClientCert, "tls_key_file", f.ClientKey), "unknown authority"},
		{"wrong server name", u("amqps", "tls_ca_file", f.CA, "tls_cert_file", f.ClientCert, "tls_key_file", f.ClientKey,
			"tls_server_name", "rabbit.example"), "rabbit.example"},
		{"TLS to a plain port", strings.Replace(u("amqps", "tls_ca_file", f.CA), addr, "127.0.0.1:5672", 1), "TLS handshake"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p, err := amqp.NewPublisher(ctx, parse(t, c.url))
			if err == nil {
				_ = p.Close()
				t.Fatal("NewPublisher succeeded")
			}
			if !errors.Is(err, bus.ErrUnreachable) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), ":"+secret+"@") {
				t.Fatalf("NewPublisher: %v (want bus.ErrUnreachable mentioning %q, no password)", err, c.want)
			}
			t.Logf("%s: %v", c.name, err)
		})
	}
}
