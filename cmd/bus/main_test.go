package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/busline/bus/internal/testbroker"
)

const (
	redisURL = "redis://127.0.0.1:6379/0"
	amqpURL  = "amqp://guest:guest@127.0.0.1:5672/"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb syncBuffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"publish", "-nope", "t"},
		{"publish"},
		{"consume"},
		{"consume", "-format", "xml", "t"},
		{"bench", "-size", "3", "t"},
		{"ping", "extra"},
		{"publish", "-url", "nats://u:hunter2@127.0.0.1:4222/", "t", "x"},
		{"publish", "-url", "redis://127.0.0.1:6379/?colour=blue", "t", "x"},
	} {
		code, _, stderr := runCmd(t, "", args...)
		require.Equal(t, exitUsage, code, "args %q: stderr %s", args, stderr)
		require.NotContains(t, stderr, "hunter2")
		if len(args) > 0 && args[0] != "frobnicate" {
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			require.True(t, strings.HasPrefix(lines[len(lines)-1], "bus: ") || strings.HasPrefix(stderr, "usage:"), stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"publish", "consume", "bench", "ping"} {
		code, _, stderr := runCmd(t, "", cmd, "-h")
		require.Equal(t, exitOK, code)
		require.Contains(t, stderr, "usage: bus "+cmd)
		require.Contains(t, stderr, "-url")
	}
	code, out, _ := runCmd(t, "", "help")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "Exit status")
}

func TestUnreachableBroker(t *testing.T) {
	for _, url := range []string{"redis://127.0.0.1:1/0", "kafka://127.0.0.1:1/", "amqp://guest:guest@127.0.0.1:1/"} {
		code, _, stderr := runCmd(t, "", "ping", "-timeout", "5s", "-url", url)
		require.Equal(t, exitFail, code, stderr)
		last := strings.Split(strings.TrimSpace(stderr), "\n")
		require.Contains(t, last[len(last)-1], "unreachable", stderr)
	}
}

func TestUnsupportedIsAFailure(t *testing.T) {
	code, _, stderr := runCmd(t, "", "consume", "-url", redisURL, "-group", "g", "t")
	require.Equal(t, exitFail, code, stderr)
	require.Contains(t, stderr, "unsupported operation")
}

// brokers returns a URL for each broker the command is tested against.
func brokers(t *testing.T) map[string]string {
	return map[string]string{
		"mem":   "mem://cmdtest",
		"redis": redisURL,
		"amqp":  amqpURL,
		"kafka": testbroker.KafkaURL(t, "create_topics=true&topic_partitions=3"),
	}
}

// TestPublishConsume runs consume with -count, waits for its ready line,
// then publishes two lines from stdin, on every broker.
func TestPublishConsume(t *testing.T) {
	for name, url := range brokers(t) {
		t.Run(name, func(t *testing.T) {
			topic := "cmdtest-" + uuid.NewString()[:8]
			if name == "amqp" {
				cleanupAMQP(t, topic)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out, errb syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"consume", "-url", url, "-count", "2", "-format", "json", topic}, nil, &out, &errb)
			}()
			waitLine(t, &errb, "bus: consuming "+topic, done)
			code, pout, perr := runCmd(t, "first\nsecond\n", "publish", "-url", url, "-key", "k", "-type", "cmd.test", "-meta", "a=b", topic)
			require.Equal(t, exitOK, code, perr)
			require.Len(t, strings.Split(strings.TrimSpace(pout), "\n"), 2, pout)
			select {
			case code := <-done:
				require.Equal(t, exitOK, code, errb.String())
			case <-ctx.Done():
				t.Fatalf("consume did not finish: %s", errb.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			require.Len(t, lines, 2)
			var e envelope
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &e))
			require.Equal(t, "first", e.Body)
			require.Equal(t, "k", e.Key)
			require.Equal(t, "cmd.test", e.Type)
			require.Equal(t, "b", e.Metadata["a"])
			require.Equal(t, topic, e.Topic)
		})
	}
}

// cleanupAMQP deletes, when the test ends, what subscribing to topic
// declared on RabbitMQ: the topic's exchange and its durable dead letter
// exchange and queue.
func cleanupAMQP(t *testing.T, topic string) {
	t.Cleanup(func() {
		onChannel(t, func(ch *amqp091.Channel) {
			_, _ = ch.QueueDelete(topic+".dlq", false, false, false)
			_ = ch.ExchangeDelete(topic+".dlq", false, false)
			_ = ch.ExchangeDelete(topic, false, false)
		})
	})
}

// deleteQueue deletes a durable queue a test declared on RabbitMQ.
func deleteQueue(t *testing.T, name string) {
	onChannel(t, func(ch *amqp091.Channel) { _, _ = ch.QueueDelete(name, false, false, false) })
}

// onChannel runs f on a channel of a connection of its own to RabbitMQ,
// for cleaning up; a connection that fails is a test error.
func onChannel(t *testing.T, f func(*amqp091.Channel)) {
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	f(ch)
}

// waitLine waits until buf holds line, failing if the command exits first
// or a minute passes.
func waitLine(t *testing.T, buf *syncBuffer, line string, exited <-chan int) {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(buf.String(), line) {
		select {
		case code := <-exited:
			t.Fatalf("command exited %d before %q: %s", code, line, buf.String())
		case <-deadline.C:
			t.Fatalf("no %q within a minute: %s", line, buf.String())
		case <-tick.C:
		}
	}
}

// TestPingEveryBroker checks that ping answers on every broker, with a
// group where the broker has groups.
func TestPingEveryBroker(t *testing.T) {
	for name, url := range brokers(t) {
		args := []string{"ping", "-url", url, "-topic", "cmdtest-ping-" + uuid.NewString()[:8]}
		if name == "kafka" || name == "mem" {
			args = append(args, "-group", "pingers") // on RabbitMQ a group is a durable queue
		}
		if name == "amqp" {
			cleanupAMQP(t, args[len(args)-1])
		}
		code, out, stderr := runCmd(t, "", args...)
		require.Equal(t, exitOK, code, "%s: %s", name, stderr)
		require.True(t, strings.HasPrefix(out, "ok "), out)
	}
}

func TestBench(t *testing.T) {
	code, out, stderr := runCmd(t, "", "bench", "-url", "mem://bench", "-n", "2000", "-progress", "1ms", "t")
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, `publish msgs/s\s+end-to-end msgs/s\s+p50\s+p99\s+allocs/msg\s+B/msg`, out)
	require.Regexp(t, benchRow("busline"), out)
	require.NotContains(t, out, "busline/raw") // no -raw, no comparison
	require.Contains(t, stderr, "bench: busline")
}

// TestBinary checks the built command's exit codes and one-line errors.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bus")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"ping", "-url", "mem://"}, exitOK},
		{[]string{"ping", "-url", redisURL, "-topic", "x"}, exitOK},
		{[]string{"ping", "-bogus"}, exitUsage},
		{[]string{"ping", "-url", "::bad"}, exitUsage},
		{[]string{"ping", "-timeout", "3s", "-url", "redis://127.0.0.1:1/0"}, exitFail},
	} {
		cmd := exec.Command(bin, c.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, c.code, code, fmt.Sprintf("%q: %s", c.args, stderr.String()))
		if c.code == exitFail {
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			require.Len(t, lines, 1, "want a one-line error, got %q", stderr.String())
			require.Regexp(t, `^bus: `, lines[0])
		}
	}
}

// An error reads once: no package or sentinel prefix repeats in the line
// the command prints. Before the sentinels lost their "bus: " prefix, a
// refused login printed "bus: amqp: bus: permission denied: ...".
func TestErrorTextReadsOnce(t *testing.T) {
	for _, url := range []string{
		"amqp://guest:wrong-password@127.0.0.1:5672/", "amqp://guest:guest@127.0.0.1:1/", "redis://127.0.0.1:1/0",
		"mem://?max_mesage_bytes=1",
	} {
		_, _, stderr := runCmd(t, "", "ping", "-timeout", "5s", "-url", url)
		last := strings.Split(strings.TrimSpace(stderr), "\n")
		line := last[len(last)-1]
		for _, word := range []string{"bus: ", "amqp: ", "redispubsub: ", "mem: "} {
			require.LessOrEqual(t, strings.Count(line, word), 1, "%q repeats in %q", word, line)
		}
		t.Log(line)
	}
}
