package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/busline/bus/internal/testbroker"
)

// benchRow matches one row of bench's table: a name, publish and
// end-to-end msgs/s, p50, p99, allocs/msg and B/msg.
func benchRow(name string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) +
		`\s+(\d+)\s+(\d+)\s+(\d[\d.]*[µnm]?s)\s+(\d[\d.]*[µnm]?s)\s+(\d+\.\d)\s+(\d+)\s*$`)
}

var ratioRow = regexp.MustCompile(`(?m)^busline/raw\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s*$`)

// TestBenchRaw runs bench -raw on every broker with a raw client, as a
// broadcast subscriber and, where the broker has groups, in a group with
// batches, and checks the table: both rows measured something and the
// ratio row is the quotient of the two.
func TestBenchRaw(t *testing.T) {
	kafkaURL := testbroker.KafkaURL(t, "create_topics=true&topic_partitions=3")
	for _, c := range []struct {
		name, url, raw string
		extra          []string
	}{
		{"redis", redisURL, "raw go-redis", nil},
		{"amqp", amqpURL, "raw amqp091-go", nil},
		{"amqp-group", amqpURL, "raw amqp091-go", []string{"-group", "g", "-batch", "10"}},
		{"kafka", kafkaURL, "raw kafka-go", nil},
		{"kafka-group", kafkaURL, "raw kafka-go", []string{"-group", "g", "-batch", "10"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			topic := "cmdtest-bench-" + uuid.NewString()[:8]
			if strings.HasPrefix(c.name, "amqp") {
				cleanupAMQP(t, topic)
			}
			args := append([]string{"bench", "-url", c.url, "-n", "300", "-publishers", "4", "-concurrency", "4",
				"-rounds", "2", "-raw", "-progress", "0"}, c.extra...)
			code, out, stderr := runCmd(t, "", append(args, topic)...)
			require.Equal(t, exitOK, code, stderr)
			t.Log("\n" + out)
			require.Contains(t, out, "rounds=2")
			b := benchRow("busline").FindStringSubmatch(out)
			require.NotNil(t, b, out)
			r := benchRow(c.raw).FindStringSubmatch(out)
			require.NotNil(t, r, out)
			q := ratioRow.FindStringSubmatch(out)
			require.NotNil(t, q, out)
			for i := 1; i < len(b); i++ {
				require.NotEqual(t, "0", b[i], "busline column %d: %s", i, out)
				require.NotEqual(t, "0", r[i], "raw column %d: %s", i, out)
			}
			// The ratio of publish msgs/s is the quotient of the rows (to
			// the rounding of the rows' whole numbers).
			bp, _ := strconv.ParseFloat(b[1], 64)
			rp, _ := strconv.ParseFloat(r[1], 64)
			qp, _ := strconv.ParseFloat(q[1], 64)
			require.InDelta(t, bp/rp, qp, 0.01+bp/rp*0.01, out)
			ba, _ := strconv.ParseFloat(b[5], 64)
			ra, _ := strconv.ParseFloat(r[5], 64)
			qa, _ := strconv.ParseFloat(q[5], 64)
			require.InDelta(t, ba/ra, qa, 0.01+ba/ra*0.01, out)
		})
	}
}

func TestBenchRawInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-url", "mem://bench"}, exitUsage, "mem:// is busline's own in-process broker"},
		{[]string{"-url", "nats://127.0.0.1:4222/"}, exitUsage, `no raw client for scheme "nats"`},
		{[]string{"-url", redisURL, "-rounds", "0"}, exitUsage, "-rounds"},
		{[]string{"-url", redisURL, "-group", "g"}, exitFail, "unsupported"},
		{[]string{"-url", amqpURL + "?topology=workqueue"}, exitFail, "workqueue"},
	} {
		args := append(append([]string{"bench", "-raw", "-n", "10", "-timeout", "20s", "-progress", "0"}, c.args...), "cmdtest-bench-input")
		code, _, stderr := runCmd(t, "", args...)
		require.Equal(t, c.code, code, "%q: %s", c.args, stderr)
		require.Contains(t, stderr, c.want, "%q", c.args)
		require.Len(t, strings.Split(strings.TrimSpace(stderr), "\n"), 1, stderr)
	}
	code, _, stderr := runCmd(t, "", "bench", "-raw=maybe", "t")
	require.Equal(t, exitUsage, code, stderr)
}

// TestBenchIgnoresEarlierMessages leaves a message in a group's durable
// queue before bench consumes in that group: bench settles it, does not
// count it (which would end the run one message early and give a
// nonsense latency) and says so.
func TestBenchIgnoresEarlierMessages(t *testing.T) {
	topic := "cmdtest-bench-" + uuid.NewString()[:8]
	cleanupAMQP(t, topic)
	t.Cleanup(func() { deleteQueue(t, topic+".g") })
	code, _, stderr := runCmd(t, "", "ping", "-url", amqpURL, "-topic", topic, "-group", "g") // declares the group's queue
	require.Equal(t, exitOK, code, stderr)
	code, _, stderr = runCmd(t, "left over\n", "publish", "-url", amqpURL, topic)
	require.Equal(t, exitOK, code, stderr)
	code, out, stderr := runCmd(t, "", "bench", "-url", amqpURL, "-group", "g", "-n", "50", "-publishers", "2", "-progress", "0", topic)
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, benchRow("busline"), out)
	require.Contains(t, stderr, "bench: busline ignored 1 messages left on the topic by earlier runs")
}
