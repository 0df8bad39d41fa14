// Package tlsconf builds the client TLS configuration every adapter takes
// from the same URL parameters: tls_ca_file, tls_cert_file, tls_key_file
// and tls_server_name.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/busline/bus"
)

// Files are the TLS settings of one connection.
type Files struct {
	// CAFile is a PEM file of CAs to trust instead of the system pool.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// mutual TLS. Both or neither.
	CertFile, KeyFile string
	// ServerName is checked against the broker's certificate.
	ServerName string
	// InsecureSkipVerify skips certificate verification (tests only).
	InsecureSkipVerify bool
}

// Config reads the files and returns the TLS configuration; errors start
// with pkg and wrap bus.ErrInvalid, naming the URL parameter at fault.
func (f Files) Config(pkg string) (*tls.Config, error) {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, fmt.Errorf("%s: %w: tls_cert_file and tls_key_file go together", pkg, bus.ErrInvalid)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify} //nolint:gosec // opt-in, documented as tests only
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: tls_ca_file: %w", pkg, bus.ErrInvalid, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %w: tls_ca_file %q holds no PEM certificate", pkg, bus.ErrInvalid, f.CAFile)
		}
		c.RootCAs = pool
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: tls_cert_file/tls_key_file: %w", pkg, bus.ErrInvalid, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// HandshakeFailed reports whether err comes from a failed TLS handshake:
// a server certificate that does not verify, an alert from the server
// (such as a client certificate it requires), or a server that does not
// speak TLS at all.
func HandshakeFailed(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
		remote   *net.OpError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	// crypto/tls reports an alert from the server as a *net.OpError whose
	// Op is "remote error".
	return errors.As(err, &verify) || errors.As(err, &record) ||
		errors.As(err, &remote) && remote.Op == "remote error" ||
		errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}
