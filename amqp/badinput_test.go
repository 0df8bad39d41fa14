package amqp_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

func TestBadInput(t *testing.T) {
	t.Parallel()
	// A loopback port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-pa55"
	for _, tc := range []struct {
		name, url string
		want      error
		mention   string
	}{
		{"wrong credentials", "amqp://guest:" + secret + "@127.0.0.1:5672/", bus.ErrPermission, "credentials"},
		{"unknown vhost", "amqp://guest:guest@127.0.0.1:5672/no-such-vhost", bus.ErrNotFound, "vhost"},
		{"unreachable", "amqp://guest:" + secret + "@127.0.0.1:" + itoa(closedPort) + "/", bus.ErrUnreachable, "cannot reach"},
		{"unknown parameter", "amqp://guest:" + secret + "@127.0.0.1:5672/?prefetch=3", bus.ErrInvalid, "prefetch"},
		{"bad topology", "amqp://127.0.0.1/?topology=star", bus.ErrInvalid, "topology"},
		{"missing TLS file", "amqps://guest:" + secret + "@127.0.0.1:5671/?tls_ca_file=/no/such/ca.pem", bus.ErrInvalid, "tls_ca_file"},
		{"TLS file without a certificate", "amqps://guest:" + secret + "@127.0.0.1:5671/?tls_ca_file=" + notPEM, bus.ErrInvalid, "no PEM certificate"},
		{"TLS key without cert", "amqps://127.0.0.1/?tls_key_file=" + notPEM, bus.ErrInvalid, "tls_cert_file"},
		{"TLS parameter on amqp", "amqp://127.0.0.1/?tls_ca_file=" + notPEM, bus.ErrInvalid, "amqps"},
		{"bad duration", "amqp://127.0.0.1/?heartbeat=often", bus.ErrInvalid, "heartbeat"},
		{"bad node address", "amqp://127.0.0.1/?addrs=node2", bus.ErrInvalid, "addrs"},
		{"no node reachable", "amqp://guest:" + secret + "@127.0.0.1:" + itoa(closedPort) + "/?addrs=127.0.0.1:" + itoa(closedPort),
			bus.ErrUnreachable, "none of the 2 nodes"},
		{"wrong credentials on a cluster", "amqp://guest:" + secret + "@127.0.0.1:" + itoa(closedPort) + "/?addrs=127.0.0.1:5672",
			bus.ErrPermission, "credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			pub, perr := bus.OpenPublisher(ctx, tc.url)
			sub, serr := bus.OpenSubscriber(ctx, tc.url)
			// A failed open is a nil interface, not a typed nil pointer.
			if pub != nil || sub != nil {
				t.Fatalf("failed opens returned %#v, %#v", pub, sub)
			}
			for _, err := range []error{perr, serr} {
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error shows the password: %v", err)
				}
				if !strings.Contains(err.Error(), tc.mention) || !strings.HasPrefix(err.Error(), "amqp: ") {
					t.Fatalf("error %q does not start with amqp: or name %q", err, tc.mention)
				}
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	cfg, err := amqp.ParseURL("amqp://u:p@127.0.0.1:5672/vh?topology=workqueue&queue_type=quorum&heartbeat=3s&dial_timeout=2s" +
		"&reconnect_min=10ms&reconnect_max=1s&max_in_flight=7&max_body_bytes=1024&connection_name=svc&addrs=10.0.0.2:5672,%20node3:5673")
	if err != nil {
		t.Fatal(err)
	}
	want := amqp.Config{URL: "amqp://u:p@127.0.0.1:5672/vh", Topology: "workqueue", QueueType: "quorum", Heartbeat: 3e9, DialTimeout: 2e9,
		ReconnectMin: 1e7, ReconnectMax: 1e9, MaxInFlight: 7, MaxBodyBytes: 1024, ConnectionName: "svc",
		Addrs: []string{"10.0.0.2:5672", "node3:5673"}}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("ParseURL:\n got %+v\nwant %+v", cfg, want)
	}
	if _, err := amqp.ParseURL("amqp://127.0.0.1/?topology=workqueue&topology=exchange"); !errors.Is(err, bus.ErrInvalid) {
		t.Fatalf("repeated parameter: %v", err)
	}
	if _, err := amqp.ParseURL("http://127.0.0.1/"); !errors.Is(err, bus.ErrInvalid) {
		t.Fatalf("wrong scheme: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, "max_body_bytes=100")
	pub := newPublisher(t, cfg)
	err := pub.Publish(context.Background(), uniqueTopic(t), &bus.Message{Body: make([]byte, 101)})
	if !errors.Is(err, bus.ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{digits[n%10]}, b...)
	}
	return string(b)
}
