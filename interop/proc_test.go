package interop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a running example program whose stdout is collected line by
// line.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd

	// Guarded by outMu:
	lines   []string
	eof     bool
	stderr  bytes.Buffer
	exitErr error

	exited chan struct{}
}

// outMu guards the output of every process; outChanged is closed and
// replaced whenever any process prints a line or exits, so that a test can
// wait on a condition over several processes.
var (
	outMu      sync.Mutex
	outChanged = make(chan struct{})
)

// notifyLocked wakes every waiter; outMu must be held.
func notifyLocked() {
	close(outChanged)
	outChanged = make(chan struct{})
}

// start runs argv with env added to a copy of the test's environment
// without BUS_URL. The process is killed in t.Cleanup.
func start(t *testing.T, name string, env []string, argv ...string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BUS_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := &proc{t: t, name: name, cmd: cmd, exited: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: &p.stderr}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			outMu.Lock()
			p.lines = append(p.lines, sc.Text())
			notifyLocked()
			outMu.Unlock()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		<-copied
		err := cmd.Wait()
		outMu.Lock()
		p.exitErr = err
		p.eof = true
		notifyLocked()
		outMu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(wait):
			t.Errorf("%s did not exit %v after SIGKILL", name, wait)
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, strings.Join(p.Lines(), "\n"), name, p.Stderr())
		}
	})
	return p
}

type lockedWriter struct{ w io.Writer }

func (l *lockedWriter) Write(b []byte) (int, error) {
	outMu.Lock()
	defer outMu.Unlock()
	return l.w.Write(b)
}

// Lines returns what the process printed so far.
func (p *proc) Lines() []string {
	outMu.Lock()
	defer outMu.Unlock()
	return append([]string(nil), p.lines...)
}

// Stderr returns what the process wrote to stderr so far.
func (p *proc) Stderr() string {
	outMu.Lock()
	defer outMu.Unlock()
	return p.stderr.String()
}

// waitUntil waits until cond holds for the process's lines, failing the
// test after d or when the output ended without it.
func (p *proc) waitUntil(d time.Duration, what string, cond func(lines []string) bool) {
	p.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		outMu.Lock()
		ok, eof, exitErr, ch := cond(p.lines), p.eof, p.exitErr, outChanged
		outMu.Unlock()
		if ok {
			return
		}
		if eof {
			p.t.Fatalf("%s exited (%v) before %s; stdout:\n%s\nstderr: %s", p.name, exitErr, what, strings.Join(p.Lines(), "\n"), p.Stderr())
		}
		select {
		case <-ch:
		case <-deadline.C:
			p.t.Fatalf("%s: no %s within %v; stdout so far:\n%s\nstderr: %s", p.name, what, d, strings.Join(p.Lines(), "\n"), p.Stderr())
		}
	}
}

// waitLine waits for a line equal to want.
func (p *proc) waitLine(want string) {
	p.t.Helper()
	p.waitUntil(wait, fmt.Sprintf("line %q", want), func(lines []string) bool { return count(lines, want) > 0 })
}

// waitExit waits for the process to exit and returns its error (nil for
// exit status 0).
func (p *proc) waitExit() error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(wait):
		p.t.Fatalf("%s still running after %v; stdout:\n%s", p.name, wait, strings.Join(p.Lines(), "\n"))
		return nil
	}
}

// mustSucceed waits for a clean exit.
func (p *proc) mustSucceed() {
	p.t.Helper()
	if err := p.waitExit(); err != nil {
		p.t.Fatalf("%s: %v; stderr: %s", p.name, err, p.Stderr())
	}
}

// kill sends SIGKILL: the process gets no chance to ack or clean up.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill %s: %v", p.name, err)
	}
	_ = p.waitExit()
}

// count returns how many lines equal want.
func count(lines []string, want string) int {
	n := 0
	for _, l := range lines {
		if l == want {
			n++
		}
	}
	return n
}
