package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/busline/bus"
)

// writePair writes a self-signed certificate and its key as PEM files.
func writePair(t *testing.T) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "busline test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile
}

func TestConfig(t *testing.T) {
	cert, key := writePair(t)
	c, err := Files{CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "broker"}.Config("x")
	require.NoError(t, err)
	require.NotNil(t, c.RootCAs)
	require.Len(t, c.Certificates, 1)
	require.Equal(t, "broker", c.ServerName)

	notPEM := filepath.Join(t.TempDir(), "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	for name, f := range map[string]Files{
		"cert without key": {CertFile: cert},
		"missing CA":       {CAFile: "/no/such/ca.pem"},
		"CA not PEM":       {CAFile: notPEM},
		"key not PEM":      {CertFile: cert, KeyFile: notPEM},
	} {
		_, err := f.Config("x")
		require.ErrorIs(t, err, bus.ErrInvalid, name)
		require.True(t, strings.HasPrefix(err.Error(), "x: "), err.Error())
	}
}
