package examples

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus/internal/testbroker"
)

// Broker addresses the example processes are pointed at. RabbitMQ and
// Redis are the real brokers on loopback; Kafka is an embedded kfake
// cluster on loopback ports, or the real cluster $BUS_KAFKA_BROKERS names.
const (
	amqpURL  = "amqp://guest:guest@127.0.0.1:5672/"
	redisURL = "redis://127.0.0.1:6379/0"

	// wait bounds every wait for a line or an exit.
	wait = 90 * time.Second
)

var (
	binDir string // the example binaries, built once by TestMain
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "busline-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "examples test:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"./workqueue", "./events", "./notifications", "./swap", "./quickstart")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "examples test: go build: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

// kafkaURL returns a kafka:// URL for the examples: topics are created on
// first use with 3 partitions, and group members time out after 6s (the
// smallest session timeout a real broker allows by default) so that a
// killed worker's tasks move on soon.
func kafkaURL(t *testing.T) string {
	t.Helper()
	return testbroker.KafkaURL(t, "create_topics=true&topic_partitions=3&session_timeout=6s&heartbeat_interval=500ms")
}

var seq atomic.Int64

// unique returns a topic, queue or group name no other test uses.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, seq.Add(1))
}

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

// start runs binDir/prog with args and env (added to a copy of the test's
// environment without BUS_URL). The process is killed in t.Cleanup.
func start(t *testing.T, name, prog string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, prog), args...)
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

// waitAll waits until cond, which may look at the Lines of any process,
// holds; it fails the test after d.
func waitAll(t *testing.T, d time.Duration, what string, cond func() bool) {
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

// mustFail waits for a failed exit whose one-line error matches re.
func (p *proc) mustFail(re string) {
	p.t.Helper()
	err := p.waitExit()
	if err == nil {
		p.t.Fatalf("%s succeeded; want an error matching %q", p.name, re)
	}
	msg := strings.TrimSpace(p.Stderr())
	if strings.Count(msg, "\n") != 0 || !regexp.MustCompile(re).MatchString(msg) {
		p.t.Fatalf("%s stderr = %q; want one line matching %q", p.name, msg, re)
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

// countPrefix returns how many lines start with prefix.
func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// cleanupAMQP deletes, once the test ends, the durable queues and
// exchanges that the examples declared on RabbitMQ for topic and its
// groups (nothing for other brokers' URLs).
func cleanupAMQP(t *testing.T, url, topic string, groups ...string) {
	if !strings.HasPrefix(url, "amqp://") {
		return
	}
	t.Cleanup(func() {
		conn, err := amqp091.Dial(amqpURL)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		queues := []string{topic, topic + ".dlq"}
		for _, g := range groups {
			queues = append(queues, topic+"."+g)
		}
		del := func(what, name string, f func(*amqp091.Channel) error) {
			ch, err := conn.Channel()
			if err != nil {
				t.Errorf("cleanup: %v", err)
				return
			}
			defer ch.Close()
			if err := f(ch); err != nil && !errors.Is(err, amqp091.ErrClosed) {
				var aerr *amqp091.Error
				if !errors.As(err, &aerr) || aerr.Code != amqp091.NotFound {
					t.Errorf("cleanup: delete %s %s: %v", what, name, err)
				}
			}
		}
		for _, q := range queues {
			del("queue", q, func(ch *amqp091.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
		}
		for _, x := range []string{topic, topic + ".dlq"} {
			del("exchange", x, func(ch *amqp091.Channel) error { return ch.ExchangeDelete(x, false, false) })
		}
	})
}
