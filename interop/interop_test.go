// Package interop runs the seed's Node.js programs (node/, on amqplib,
// kafkajs and node-redis from the npm registry) against busline's Go
// examples in both directions on every broker: a RabbitMQ work queue, a
// Kafka consumer group and Redis pub/sub. See README.md.
package interop

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus/internal/testbroker"
	"github.com/busline/bus/internal/testproc"
)

const (
	amqpURL   = "amqp://guest:guest@127.0.0.1:5672/"
	redisAddr = "127.0.0.1:6379"
	redisURL  = "redis://" + redisAddr + "/0"

	// wait bounds every wait for a line, an exit or a broker condition.
	wait = 60 * time.Second
)

var (
	goBin string // the Go example binaries, built by TestMain

	npmOnce sync.Once
	nodeDir string // node_modules for the Node programs
	npmErr  error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	return testproc.RunWithBinaries(m, &goBin,
		"github.com/busline/bus/examples/workqueue", "github.com/busline/bus/examples/notifications")
}

// node returns the argv that runs the Node program script (a file in
// node/) and the environment that finds its packages. The packages are
// installed from the npm registry on first use; a failed install fails the
// test.
func node(t *testing.T, script string, args ...string) (argv, env []string) {
	t.Helper()
	npmOnce.Do(func() { nodeDir, npmErr = npmInstall() })
	if npmErr != nil {
		t.Fatalf("installing the Node packages: %v", npmErr)
	}
	abs, err := filepath.Abs(filepath.Join("node", script))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"node", abs}, args...), []string{
		"NODE_PATH=" + filepath.Join(nodeDir, "node_modules"),
		"KAFKAJS_NO_PARTITIONER_WARNING=1",
	}
}

// npmInstall installs node/package.json's dependencies with npm into a
// folder under os.TempDir named after the hash of package.json and the
// Node version, and returns that folder. A later run with the same
// package.json and Node reuses the folder; a folder is used only once an
// install into it completed.
func npmInstall() (string, error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s is needed to run the seed's programs: %w", tool, err)
		}
	}
	pkg, err := os.ReadFile(filepath.Join("node", "package.json"))
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ver, err := exec.CommandContext(ctx, "node", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("node --version: %w", err)
	}
	sum := sha256.Sum256(append(pkg, ver...))
	dir := filepath.Join(os.TempDir(), "busline-interop-npm-"+hex.EncodeToString(sum[:8]))
	const marker = ".busline-install-complete"
	if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "busline-interop-npm-install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone after the rename below; cleans up a failed install
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), pkg, 0o644); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--no-package-lock")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install in %s: %w\n%s", tmp, err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, marker), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another run may have installed the same packages meanwhile.
		if _, serr := os.Stat(filepath.Join(dir, marker)); serr == nil {
			return dir, nil
		}
		// A half-made folder from an interrupted run: replace it.
		if rerr := os.RemoveAll(dir); rerr != nil {
			return "", errors.Join(err, rerr)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// kafka returns the bootstrap brokers ("host:port,...") of the test
// cluster (embedded kfake, or $BUS_KAFKA_BROKERS) and the busline URL for
// them. Topics are created by the Go side (create_topics=true): kfake, like
// a broker with auto.create.topics.enable=false, does not create a topic
// because a client asked for its metadata.
func kafka(t *testing.T) (brokers, url string) {
	t.Helper()
	return strings.Join(testbroker.KafkaAddrs(t), ","), testbroker.KafkaURL(t, "create_topics=true&topic_partitions=3")
}

var seq atomic.Int64

// unique returns a queue, topic, group or channel name no other test uses.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, seq.Add(1))
}

// deleteQueues removes the durable queues a test declared, once it ends.
func deleteQueues(t *testing.T, names ...string) {
	t.Cleanup(func() {
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
		for _, q := range names {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Errorf("cleanup: delete queue %s: %v", q, err)
				return
			}
		}
	})
}

// TestRabbitMQWorkQueue: the seed's amqplib work-queue programs and the
// workqueue example on topology=workqueue share a durable queue.
func TestRabbitMQWorkQueue(t *testing.T) {
	t.Parallel()
	goURL := amqpURL + "?topology=workqueue"

	t.Run("node-to-go", func(t *testing.T) {
		t.Parallel()
		queue := unique("task_queue")
		deleteQueues(t, queue, queue+".dlq")
		worker := start(t, "go worker", nil, filepath.Join(goBin, "workqueue"), "worker",
			"-url", goURL, "-queue", queue, "-name", "go", "-unit", "10ms", "-count", "1")
		worker.WaitLine(" [go] Waiting for messages in " + queue + ". To exit press CTRL+C")
		argv, env := node(t, "amqp_producer.js", "Hello from Node.")
		prod := start(t, "node producer", append(env, "AMQP_URL="+amqpURL, "QUEUE="+queue), argv...)
		prod.MustSucceed()
		if got, want := prod.Lines(), " [x] Sent 'Hello from Node.'"; len(got) != 1 || got[0] != want {
			t.Errorf("node producer printed %q; want %q", got, want)
		}
		worker.WaitLine(" [go] Received 'Hello from Node.'")
		worker.WaitLine(" [go] Done 'Hello from Node.'")
		worker.MustSucceed()
	})

	t.Run("go-to-node", func(t *testing.T) {
		t.Parallel()
		queue := unique("task_queue")
		deleteQueues(t, queue)
		argv, env := node(t, "amqp_worker.js")
		worker := start(t, "node worker", append(env, "AMQP_URL="+amqpURL, "QUEUE="+queue), argv...)
		worker.WaitLine(" [*] Waiting for messages in " + queue + ". To exit press CTRL+C")
		prod := start(t, "go producer", nil, filepath.Join(goBin, "workqueue"), "produce",
			"-url", goURL, "-queue", queue, "Hello from Go.")
		prod.MustSucceed()
		if got, want := prod.Lines(), " [x] Sent 'Hello from Go.'"; len(got) != 1 || got[0] != want {
			t.Errorf("go producer printed %q; want %q", got, want)
		}
		worker.WaitLine(" [x] Received Hello from Go.")
		worker.WaitLine(" [x] Done")
	})
	// A Node worker and a Go worker share one queue, and each takes over
	// the task the other was killed in the middle of: neither acks early.
	t.Run("node-killed-go-takes-over", func(t *testing.T) {
		t.Parallel()
		queue := unique("task_queue")
		deleteQueues(t, queue, queue+".dlq")
		argv, env := node(t, "amqp_worker.js")
		env = append(env, "AMQP_URL="+amqpURL, "QUEUE="+queue)
		nodeWorker := start(t, "node worker", env, argv...)
		nodeWorker.WaitLine(" [*] Waiting for messages in " + queue + ". To exit press CTRL+C")
		// Three dots are three seconds of work for the seed's worker.
		argv, _ = node(t, "amqp_producer.js", "Long task...")
		start(t, "node producer", env, argv...).MustSucceed()
		nodeWorker.WaitLine(" [x] Received Long task...")
		goWorker := start(t, "go worker", nil, filepath.Join(goBin, "workqueue"), "worker",
			"-url", goURL, "-queue", queue, "-name", "go", "-unit", "10ms", "-count", "1")
		goWorker.WaitLine(" [go] Waiting for messages in " + queue + ". To exit press CTRL+C")
		nodeWorker.Kill()
		if testproc.Count(nodeWorker.Lines(), " [x] Done") != 0 {
			t.Fatal("the node worker finished the task before it was killed")
		}
		goWorker.WaitLine(" [go] Received 'Long task...'")
		goWorker.WaitLine(" [go] Done 'Long task...'")
		goWorker.MustSucceed()
	})

	t.Run("go-killed-node-takes-over", func(t *testing.T) {
		t.Parallel()
		queue := unique("task_queue")
		deleteQueues(t, queue, queue+".dlq")
		goWorker := start(t, "go worker", nil, filepath.Join(goBin, "workqueue"), "worker",
			"-url", goURL, "-queue", queue, "-name", "go", "-unit", "1s")
		goWorker.WaitLine(" [go] Waiting for messages in " + queue + ". To exit press CTRL+C")
		start(t, "go producer", nil, filepath.Join(goBin, "workqueue"), "produce",
			"-url", goURL, "-queue", queue, "Long task...").MustSucceed()
		goWorker.WaitLine(" [go] Received 'Long task...'")
		argv, env := node(t, "amqp_worker.js")
		nodeWorker := start(t, "node worker", append(env, "AMQP_URL="+amqpURL, "QUEUE="+queue), argv...)
		nodeWorker.WaitLine(" [*] Waiting for messages in " + queue + ". To exit press CTRL+C")
		goWorker.Kill()
		if testproc.Count(goWorker.Lines(), " [go] Done 'Long task...'") != 0 {
			t.Fatal("the go worker finished the task before it was killed")
		}
		nodeWorker.WaitLine(" [x] Received Long task...")
		nodeWorker.WaitLine(" [x] Done")
	})
}

// TestKafkaConsumerGroup: the seed's kafkajs producer and consumer group
// and the workqueue example, whose workers are a consumer group.
func TestKafkaConsumerGroup(t *testing.T) {
	t.Parallel()
	brokers, goURL := kafka(t)

	t.Run("node-to-go", func(t *testing.T) {
		t.Parallel()
		topic := unique("test-topic")
		// The Go worker creates the topic and joins the group named after
		// it; a new group starts at the earliest offset.
		worker := start(t, "go worker", nil, filepath.Join(goBin, "workqueue"), "worker",
			"-url", goURL, "-queue", topic, "-name", "go", "-unit", "10ms", "-count", "1")
		worker.WaitLine(" [go] Waiting for messages in " + topic + ". To exit press CTRL+C")
		argv, env := node(t, "kafka_producer.js", "Hello from KafkaJS.")
		prod := start(t, "node producer", append(env, "KAFKA_BROKERS="+brokers, "TOPIC="+topic), argv...)
		prod.MustSucceed()
		worker.WaitLine(" [go] Received 'Hello from KafkaJS.'")
		worker.WaitLine(" [go] Done 'Hello from KafkaJS.'")
		worker.MustSucceed()
	})

	t.Run("go-to-node", func(t *testing.T) {
		t.Parallel()
		topic := unique("test-topic")
		// The Go producer creates the topic; the seed's consumer group
		// reads it from the beginning, so it may join after the publish.
		prod := start(t, "go producer", nil, filepath.Join(goBin, "workqueue"), "produce",
			"-url", goURL, "-queue", topic, "Hello from Go.")
		prod.MustSucceed()
		if got, want := prod.Lines(), " [x] Sent 'Hello from Go.'"; len(got) != 1 || got[0] != want {
			t.Errorf("go producer printed %q; want %q", got, want)
		}
		argv, env := node(t, "kafka_consumer.js")
		cons := start(t, "node consumer", append(env, "KAFKA_BROKERS="+brokers, "TOPIC="+topic, "GROUP="+unique("test-group")), argv...)
		// console.log of the seed's object: { partition: 2, offset: '0', value: '...' }
		re := regexp.MustCompile(`^\{ partition: [0-2], offset: '0', value: 'Hello from Go\.' \}$`)
		cons.WaitUntil(wait, "the message printed by the consumer group", func(lines []string) bool {
			for _, l := range lines {
				if re.MatchString(l) {
					return true
				}
			}
			return false
		})
	})
}

// waitSubscribers waits until Redis counts n subscribers of channel: the
// seed's subscriber prints nothing when its SUBSCRIBE took effect, so the
// test asks the broker.
func waitSubscribers(t *testing.T, channel string, n int64) {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		counts, err := rdb.PubSubNumSub(ctx, channel).Result()
		if err == nil && counts[channel] >= n {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("redis: %d subscribers of %s not seen within %v (last error: %v)", n, channel, wait, err)
		}
	}
}

// TestRedisPubSub: the seed's node-redis publisher and subscriber and the
// notifications example.
func TestRedisPubSub(t *testing.T) {
	t.Parallel()

	t.Run("node-to-go", func(t *testing.T) {
		t.Parallel()
		channel := unique("notifications")
		sub := start(t, "go subscriber", nil, filepath.Join(goBin, "notifications"), "subscribe",
			"-url", redisURL, "-channel", channel, "-count", "1")
		sub.WaitLine("Subscribed to " + channel)
		argv, env := node(t, "redis_publisher.js", "Hello, Redis!")
		pub := start(t, "node publisher", append(env, "REDIS_URL="+redisURL, "CHANNEL="+channel), argv...)
		pub.MustSucceed()
		if got, want := pub.Lines(), "Message sent to 1 subscribers."; len(got) != 1 || got[0] != want {
			t.Errorf("node publisher printed %q; want %q", got, want)
		}
		sub.WaitLine("Received message from " + channel + ": Hello, Redis!")
		sub.MustSucceed()
	})

	// The seed's subscriber prints the message as it came. With
	// format=raw our publisher sends the bare body, so it prints the text.
	t.Run("go-to-node-raw", func(t *testing.T) {
		t.Parallel()
		channel := unique("notifications")
		argv, env := node(t, "redis_subscriber.js")
		sub := start(t, "node subscriber", append(env, "REDIS_URL="+redisURL, "CHANNEL="+channel), argv...)
		waitSubscribers(t, channel, 1)
		pub := start(t, "go publisher", nil, filepath.Join(goBin, "notifications"), "publish",
			"-url", redisURL+"?format=raw", "-channel", channel, "Hello from Go!")
		pub.MustSucceed()
		if got, want := pub.Lines(), "Message sent to 1 subscribers."; len(got) != 1 || got[0] != want {
			t.Errorf("go publisher printed %q; want %q", got, want)
		}
		sub.WaitLine("Received message from " + channel + ": Hello from Go!")
	})

	// Without format=raw a plain subscriber sees the structured CloudEvents
	// JSON: this pins down what it prints.
	t.Run("go-to-node-structured", func(t *testing.T) {
		t.Parallel()
		channel := unique("notifications")
		argv, env := node(t, "redis_subscriber.js")
		sub := start(t, "node subscriber", append(env, "REDIS_URL="+redisURL, "CHANNEL="+channel), argv...)
		waitSubscribers(t, channel, 1)
		pub := start(t, "go publisher", nil, filepath.Join(goBin, "notifications"), "publish",
			"-url", redisURL, "-channel", channel, "Hello from Go!")
		pub.MustSucceed()
		prefix := "Received message from " + channel + ": "
		sub.WaitUntil(wait, "a received line", func(lines []string) bool {
			for _, l := range lines {
				if strings.HasPrefix(l, prefix) {
					return true
				}
			}
			return false
		})
		var line string
		for _, l := range sub.Lines() {
			if strings.HasPrefix(l, prefix) {
				line = strings.TrimPrefix(l, prefix)
				break
			}
		}
		var ev struct {
			SpecVersion     string  `json:"specversion"`
			ID              string  `json:"id"`
			Type            string  `json:"type"`
			DataContentType string  `json:"datacontenttype"`
			Data            *string `json:"data"`
			DataBase64      string  `json:"data_base64"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("node subscriber printed %q: not CloudEvents JSON: %v", line, err)
		}
		body := ""
		if ev.Data != nil {
			body = *ev.Data
		} else {
			b, err := base64.StdEncoding.DecodeString(ev.DataBase64)
			if err != nil {
				t.Fatalf("data_base64 in %q: %v", line, err)
			}
			body = string(b)
		}
		if ev.SpecVersion != "1.0" || ev.ID == "" || ev.Type != "notification" || ev.DataContentType != "text/plain" || body != "Hello from Go!" {
			t.Errorf("node subscriber printed %q; want a CloudEvent of type notification carrying %q", line, "Hello from Go!")
		}
	})
}
