package examples

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus/internal/testbroker"
	"github.com/busline/bus/internal/testproc"
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
	return testproc.RunWithBinaries(m, &binDir,
		"./workqueue", "./events", "./notifications", "./swap", "./quickstart", "./observability")
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

// start runs binDir/prog with args and env (added to a copy of the test's
// environment without BUS_URL). The process is killed in t.Cleanup.
func start(t *testing.T, name, prog string, env []string, args ...string) *testproc.Proc {
	t.Helper()
	return testproc.Start(t, wait, name, env, append([]string{filepath.Join(binDir, prog)}, args...)...)
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
