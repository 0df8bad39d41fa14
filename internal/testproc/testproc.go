// Package testproc runs programs for tests and lets a test wait, with
// deadlines, on what they print: a line, a condition over the output of
// several processes, an exit. Every process is killed when its test ends,
// and its output is logged when the test failed.
package testproc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a running program whose standard output is collected line by
// line.
type Proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	timeout time.Duration

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

// Start runs argv with env added to a copy of the test's environment
// without BUS_URL. timeout bounds every wait on the process. The process
// is killed in t.Cleanup.
func Start(t *testing.T, timeout time.Duration, name string, env []string, argv ...string) *Proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BUS_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := &Proc{t: t, name: name, cmd: cmd, timeout: timeout, exited: make(chan struct{})}
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
		case <-time.After(timeout):
			t.Errorf("%s did not exit %v after SIGKILL", name, timeout)
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

// Name returns the name the process was started with.
func (p *Proc) Name() string { return p.name }

// Lines returns what the process printed so far.
func (p *Proc) Lines() []string {
	outMu.Lock()
	defer outMu.Unlock()
	return append([]string(nil), p.lines...)
}

// Stderr returns what the process wrote to standard error so far.
func (p *Proc) Stderr() string {
	outMu.Lock()
	defer outMu.Unlock()
	return p.stderr.String()
}

// WaitUntil waits until cond holds for the process's lines, failing the
// test after d or when the output ended without it.
func (p *Proc) WaitUntil(d time.Duration, what string, cond func(lines []string) bool) {
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

// WaitLine waits for a line equal to want.
func (p *Proc) WaitLine(want string) {
	p.t.Helper()
	p.WaitUntil(p.timeout, fmt.Sprintf("line %q", want), func(lines []string) bool { return Count(lines, want) > 0 })
}

// WaitExit waits for the process to exit and returns its error (nil for
// exit status 0).
func (p *Proc) WaitExit() error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(p.timeout):
		p.t.Fatalf("%s still running after %v; stdout:\n%s", p.name, p.timeout, strings.Join(p.Lines(), "\n"))
		return nil
	}
}

// MustSucceed waits for a clean exit.
func (p *Proc) MustSucceed() {
	p.t.Helper()
	if err := p.WaitExit(); err != nil {
		p.t.Fatalf("%s: %v; stderr: %s", p.name, err, p.Stderr())
	}
}

// MustFail waits for a failed exit whose one-line error matches re.
func (p *Proc) MustFail(re string) {
	p.t.Helper()
	err := p.WaitExit()
	if err == nil {
		p.t.Fatalf("%s succeeded; want an error matching %q", p.name, re)
	}
	msg := strings.TrimSpace(p.Stderr())
	if strings.Count(msg, "\n") != 0 || !regexp.MustCompile(re).MatchString(msg) {
		p.t.Fatalf("%s stderr = %q; want one line matching %q", p.name, msg, re)
	}
}

// Kill sends SIGKILL (the process gets no chance to ack or clean up) and
// waits for the exit.
func (p *Proc) Kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill %s: %v", p.name, err)
	}
	_ = p.WaitExit()
}

// WaitAll waits until cond, which may look at the Lines of any process,
// holds; it fails the test after d.
func WaitAll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		outMu.Lock()
		ch := outChanged
		outMu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %s within %v", what, d)
		}
	}
}

// Count returns how many lines equal want.
func Count(lines []string, want string) int {
	n := 0
	for _, l := range lines {
		if l == want {
			n++
		}
	}
	return n
}

// CountPrefix returns how many lines start with prefix.
func CountPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// RunWithBinaries is a TestMain body: it builds pkgs (go build package
// paths) into a temporary folder, stores the folder in *dir, runs the tests
// and removes the folder. A failed build fails the run before any test.
func RunWithBinaries(m *testing.M, dir *string, pkgs ...string) int {
	tmp, err := os.MkdirTemp("", "busline-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testproc:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", append([]string{"build", "-o", tmp + string(filepath.Separator)}, pkgs...)...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "testproc: go build: %v\n%s", err, out)
		return 1
	}
	*dir = tmp
	return m.Run()
}
