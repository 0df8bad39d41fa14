package tlsconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/testbroker"
)

func TestConfig(t *testing.T) {
	f := testbroker.NewTLSFiles(t)
	cert, key := f.ClientCert, f.ClientKey
	c, err := Files{CAFile: f.CA, CertFile: cert, KeyFile: key, ServerName: "broker"}.Config("x")
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
