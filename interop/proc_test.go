package interop

import (
	"testing"

	"github.com/busline/bus/internal/testproc"
)

// start runs argv with env added to a copy of the test's environment
// without BUS_URL. The process is killed in t.Cleanup.
func start(t *testing.T, name string, env []string, argv ...string) *testproc.Proc {
	t.Helper()
	return testproc.Start(t, wait, name, env, argv...)
}
