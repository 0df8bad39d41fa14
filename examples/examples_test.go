// Package examples holds the test that runs every example program as its
// users would: separate producer and consumer processes on each broker the
// example supports, asserting what both sides print.
package examples

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/busline/bus/internal/testproc"
)

// broker is one broker the examples run on.
type broker struct {
	name string
	url  func(t *testing.T) string
}

func fixed(u string) func(*testing.T) string { return func(*testing.T) string { return u } }

var (
	amqpExchange  = broker{"rabbitmq", fixed(amqpURL)}
	amqpWorkQueue = broker{"rabbitmq-workqueue", fixed(amqpURL + "?topology=workqueue")}
	kafkaBroker   = broker{"kafka", kafkaURL}
	redisBroker   = broker{"redis", fixed(redisURL)}
)

func TestWorkqueueDemoOnMem(t *testing.T) {
	t.Parallel()
	p := start(t, "demo", "workqueue", nil, "demo", "-url", "mem://", "-unit", "10ms")
	p.MustSucceed()
	lines := p.Lines()
	for _, task := range []string{"First task.", "Second task..", "Third task.", "Fourth task..", "Fifth task."} {
		if n := countSuffix(lines, "] Done '"+task+"'"); n != 1 {
			t.Errorf("%q done %d times; want 1", task, n)
		}
	}
	for _, w := range []string{"worker-1", "worker-2"} {
		if testproc.CountPrefix(lines, " ["+w+"] Received ") == 0 {
			t.Errorf("%s received nothing", w)
		}
	}
}

// TestWorkqueue: two worker processes share the tasks of one producer
// process, and a worker killed mid-task loses nothing.
func TestWorkqueue(t *testing.T) {
	t.Parallel()
	for _, b := range []broker{amqpExchange, amqpWorkQueue, kafkaBroker} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			t.Run("share", func(t *testing.T) { workqueueShare(t, b.url(t)) })
			t.Run("kill", func(t *testing.T) { workqueueKill(t, b.url(t)) })
		})
	}
	t.Run("redis-unsupported", func(t *testing.T) {
		t.Parallel()
		w := start(t, "worker", "workqueue", nil, "worker", "-url", redisURL, "-queue", unique("wq"))
		w.MustFail(`^workqueue: .*unsupported operation: Redis pub/sub has no consumer groups`)
	})
}

func startWorkers(t *testing.T, url, queue, unit string) [2]*testproc.Proc {
	var ws [2]*testproc.Proc
	for i := range ws {
		name := fmt.Sprintf("w%d", i+1)
		ws[i] = start(t, name, "workqueue", nil, "worker", "-url", url, "-queue", queue, "-name", name, "-unit", unit)
		ws[i].WaitLine(fmt.Sprintf(" [%s] Waiting for messages in %s. To exit press CTRL+C", name, queue))
	}
	return ws
}

func workqueueShare(t *testing.T, url string) {
	queue := unique("wq-share")
	cleanupAMQP(t, url, queue)
	ws := startWorkers(t, url, queue, "10ms")
	// Enough tasks that both workers get some even on Kafka, where tasks
	// without a key land on random partitions and the two workers hold
	// two partitions and one.
	var tasks []string
	for i := 1; i <= 30; i++ {
		tasks = append(tasks, fmt.Sprintf("Task %d%s", i, strings.Repeat(".", i%3)))
	}
	prod := start(t, "producer", "workqueue", nil, append([]string{"produce", "-url", url, "-queue", queue}, tasks...)...)
	prod.MustSucceed()
	for _, task := range tasks {
		if n := testproc.Count(prod.Lines(), " [x] Sent '"+task+"'"); n != 1 {
			t.Errorf("producer printed Sent for %q %d times", task, n)
		}
	}
	done := func() int {
		n := 0
		for _, task := range tasks {
			if countSuffix(ws[0].Lines(), "] Done '"+task+"'")+countSuffix(ws[1].Lines(), "] Done '"+task+"'") > 0 {
				n++
			}
		}
		return n
	}
	testproc.WaitAll(t, wait, "all tasks done", func() bool { return done() == len(tasks) })
	for i, w := range ws {
		name := fmt.Sprintf("w%d", i+1)
		if testproc.CountPrefix(w.Lines(), " ["+name+"] Received '") == 0 {
			t.Errorf("%s received no task; the workers did not share", name)
		}
	}
}

func workqueueKill(t *testing.T, url string) {
	queue := unique("wq-kill")
	cleanupAMQP(t, url, queue)
	// 40 dots of 100ms: the task runs for 4s, long enough to kill its
	// worker in the middle of it.
	long := "Long task" + strings.Repeat(".", 40)
	ws := startWorkers(t, url, queue, "100ms")
	prod := start(t, "producer", "workqueue", nil, "produce", "-url", url, "-queue", queue, long)
	prod.MustSucceed()
	if testproc.Count(prod.Lines(), " [x] Sent '"+long+"'") != 1 {
		t.Fatalf("producer did not print Sent: %q", prod.Lines())
	}
	received := " Received '" + long + "'"
	// Whichever worker got the task is killed while working on it.
	testproc.WaitAll(t, wait, "the long task received by a worker", func() bool {
		return countSuffix(ws[0].Lines(), received)+countSuffix(ws[1].Lines(), received) > 0
	})
	victim, survivor := ws[0], ws[1]
	if countSuffix(ws[0].Lines(), received) == 0 {
		victim, survivor = ws[1], ws[0]
	}
	victim.Kill()
	if countSuffix(victim.Lines(), "] Done '"+long+"'") != 0 {
		t.Fatalf("%s finished the task before it was killed; the test needs a longer task", victim.Name())
	}
	survivor.WaitLine(" [" + survivor.Name() + "]" + received)
	survivor.WaitLine(" [" + survivor.Name() + "] Done '" + long + "'")
}

func TestEventsDemoOnMem(t *testing.T) {
	t.Parallel()
	p := start(t, "demo", "events", nil, "demo", "-url", "mem://")
	p.MustSucceed()
	lines := p.Lines()
	if testproc.Count(lines, "billing got 15 events, shipping got 15") != 1 {
		t.Errorf("demo did not report 15 events per group")
	}
	if n := countSuffix(lines, " OUT OF ORDER"); n != 0 {
		t.Errorf("%d events out of order", n)
	}
}

// TestEvents: two groups each get every event, the two members of one
// group share them, and every member sees each order's events in order.
func TestEvents(t *testing.T) {
	t.Parallel()
	for _, b := range []broker{amqpExchange, kafkaBroker} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			url := b.url(t)
			topic := unique("events")
			billing, shipping := unique("billing"), unique("shipping")
			cleanupAMQP(t, url, topic, billing, shipping)
			var members []*testproc.Proc
			for _, m := range []struct{ group, name string }{{billing, "billing-1"}, {billing, "billing-2"}, {shipping, "shipping-1"}} {
				p := start(t, m.name, "events", nil, "consume", "-url", url, "-topic", topic, "-group", m.group, "-name", m.name)
				p.WaitLine(fmt.Sprintf("[%s] ready in group %s", m.name, m.group))
				members = append(members, p)
			}
			// The keys order-1 ... order-8 hash (murmur2) to all three
			// Kafka partitions, so both billing members get events however
			// the group splits the partitions.
			const orders, steps = 8, 5
			prod := start(t, "producer", "events", nil, "produce", "-url", url, "-topic", topic,
				"-orders", fmt.Sprint(orders), "-steps", fmt.Sprint(steps))
			prod.MustSucceed()
			if want := fmt.Sprintf("published %d events for %d orders", orders*steps, orders); testproc.Count(prod.Lines(), want) != 1 {
				t.Fatalf("producer printed %q; want %q", prod.Lines(), want)
			}
			events := func(p *testproc.Proc) int { return testproc.CountPrefix(p.Lines(), "["+p.Name()+"] order-") }
			testproc.WaitAll(t, wait, "every event in both groups", func() bool {
				return events(members[0])+events(members[1]) >= orders*steps && events(members[2]) >= orders*steps
			})
			for _, p := range members {
				if n := countSuffix(p.Lines(), " OUT OF ORDER"); n != 0 {
					t.Errorf("%s saw %d events out of order", p.Name(), n)
				}
				if events(p) == 0 {
					t.Errorf("%s got no events; the members of its group did not share", p.Name())
				}
			}
			// Every event reached each group: check each order's steps.
			for o := 1; o <= orders; o++ {
				for _, step := range []string{"order.created", "order.paid", "order.packed", "order.shipped", "order.delivered"}[:steps] {
					ev := fmt.Sprintf(" order-%d %s in order", o, step)
					if countSuffix(members[0].Lines(), ev)+countSuffix(members[1].Lines(), ev) == 0 {
						t.Errorf("billing never got%s", ev)
					}
					if countSuffix(members[2].Lines(), ev) == 0 {
						t.Errorf("shipping never got%s", ev)
					}
				}
			}
		})
	}
	t.Run("redis-unsupported", func(t *testing.T) {
		t.Parallel()
		c := start(t, "consumer", "events", nil, "consume", "-url", redisURL, "-topic", unique("events"))
		c.MustFail(`^events: .*unsupported operation: Redis pub/sub has no consumer groups`)
	})
}

func TestNotifications(t *testing.T) {
	t.Parallel()
	t.Run("mem-demo", func(t *testing.T) {
		t.Parallel()
		p := start(t, "demo", "notifications", nil, "demo", "-url", "mem://")
		p.MustSucceed()
		lines := p.Lines()
		if testproc.Count(lines, "Received message from notifications: Hello, Redis!") != 2 {
			t.Errorf("want two subscribers to receive the notification; got:\n%s", strings.Join(lines, "\n"))
		}
	})
	for _, tc := range []struct {
		b    broker
		sent string // what the publisher prints
	}{
		{redisBroker, "Message sent to 2 subscribers."},
		{amqpExchange, "Message sent."},
		{kafkaBroker, "Message sent."},
	} {
		t.Run(tc.b.name, func(t *testing.T) {
			t.Parallel()
			url, channel := tc.b.url(t), unique("notifications")
			cleanupAMQP(t, url, channel)
			var subs []*testproc.Proc
			for i := range 2 {
				s := start(t, fmt.Sprintf("subscriber-%d", i+1), "notifications", nil, "subscribe", "-url", url, "-channel", channel, "-count", "1")
				s.WaitLine("Subscribed to " + channel)
				subs = append(subs, s)
			}
			pub := start(t, "publisher", "notifications", nil, "publish", "-url", url, "-channel", channel, "Hello, busline!")
			pub.MustSucceed()
			if got := pub.Lines(); len(got) != 1 || got[0] != tc.sent {
				t.Errorf("publisher printed %q; want %q", got, tc.sent)
			}
			for _, s := range subs {
				s.WaitLine("Received message from " + channel + ": Hello, busline!")
				s.MustSucceed()
			}
		})
	}
}

func TestSwap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url, shown string
	}{
		{"mem", "mem://", "mem://"},
		{"rabbitmq", amqpURL, "amqp://guest:xxxxx@127.0.0.1:5672/"},
		{"redis", redisURL, redisURL},
		{"kafka", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "kafka" {
				tc.url = kafkaURL(t)
				tc.shown = tc.url
			}
			topic := unique("swap")
			cleanupAMQP(t, tc.url, topic)
			cfg, err := json.Marshal(map[string]string{"url": tc.url, "topic": topic})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "swap.json")
			if err := os.WriteFile(path, cfg, 0o600); err != nil {
				t.Fatal(err)
			}
			p := start(t, "swap", "swap", []string{"BUS_URL=mem://wrong"}, "-config", path)
			p.MustSucceed()
			want := fmt.Sprintf("on %s: received %q", tc.shown, "same code, any broker")
			if got := p.Lines(); len(got) != 1 || !strings.HasPrefix(got[0], want+" (") {
				t.Errorf("swap printed %q; want one line starting %q", got, want)
			}
		})
	}
}

func TestQuickstart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url, shown string
	}{
		{"default", "", "mem://"},
		{"rabbitmq", amqpURL, "amqp://guest:xxxxx@127.0.0.1:5672/"},
		{"redis", redisURL, redisURL},
		{"kafka", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "kafka" {
				tc.url = kafkaURL(t)
				tc.shown = tc.url
			}
			var env []string
			if tc.url != "" {
				env = []string{"BUS_URL=" + tc.url}
			}
			topic := unique("quickstart")
			cleanupAMQP(t, tc.url, topic)
			p := start(t, "quickstart", "quickstart", env, "-topic", topic)
			p.MustSucceed()
			want := []string{
				"busline quickstart on " + tc.shown,
				"published 3 messages",
				`received greeting.sent "hello 1"`,
				`received greeting.sent "hello 2"`,
				`received greeting.sent "hello 3"`,
				"done",
			}
			if got := p.Lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("quickstart printed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// countSuffix returns how many lines end with suffix.
func countSuffix(lines []string, suffix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasSuffix(l, suffix) {
			n++
		}
	}
	return n
}
