// Command workqueue is the seed's RabbitMQ work queue on any broker: the
// producer sends tasks whose dots say how many seconds of work they take;
// workers share them with fair dispatch (one task at a time each, acked
// only when done), so a worker killed mid-task loses nothing on RabbitMQ
// and Kafka: the task goes to another worker.
//
//	go run ./examples/workqueue worker            # start two of these
//	go run ./examples/workqueue produce "First task." "Second task.."
//	go run ./examples/workqueue demo              # both in one process (mem://)
//
// The queue is a group named after the topic, so on RabbitMQ it is exactly
// the seed's durable "task_queue" (use ?topology=workqueue to talk to the
// seed's Node programs). Redis pub/sub has no work queues and says so.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/examples/internal/exampleutil"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: workqueue produce|worker|demo [flags] [task ...]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("workqueue "+os.Args[1], flag.ExitOnError)
	url := exampleutil.URLFlag(fs)
	queue := fs.String("queue", "task_queue", "queue (topic) name")
	unit := fs.Duration("unit", time.Second, "work time per dot")
	count := fs.Int("count", 0, "worker: exit after this many tasks (0: run until interrupted)")
	name := fs.String("name", "worker", "worker: name printed with each line")
	_ = fs.Parse(os.Args[2:])
	ctx, cancel := exampleutil.SignalContext()
	defer cancel()
	var err error
	switch os.Args[1] {
	case "produce":
		err = produce(ctx, *url, *queue, fs.Args())
	case "worker":
		err = work(ctx, *url, *queue, *name, *unit, *count)
	case "demo":
		err = demo(ctx, *url, *queue, *unit)
	default:
		err = fmt.Errorf("unknown command %q (want produce, worker or demo)", os.Args[1])
	}
	if err != nil {
		exampleutil.Fatal("workqueue", err)
	}
}

func produce(ctx context.Context, url, queue string, tasks []string) error {
	if len(tasks) == 0 {
		tasks = []string{"Hello World!"}
	}
	pub, err := bus.OpenPublisher(ctx, url)
	if err != nil {
		return err
	}
	defer pub.Close()
	for _, t := range tasks {
		// Publish returns once the broker has the task: it is durable on
		// RabbitMQ (persistent message, durable queue) and Kafka.
		if err := pub.Publish(ctx, queue, &bus.Message{Type: "task", ContentType: "text/plain", Body: []byte(t)}); err != nil {
			return err
		}
		fmt.Printf(" [x] Sent '%s'\n", t)
	}
	return pub.Close()
}

// worker returns the handler of worker name: it prints the task, works a
// unit per dot in it (stopping when its context ends: the task is then
// redelivered) and calls done after each finished task.
func worker(name string, unit time.Duration, done func()) bus.Handler {
	return func(hctx context.Context, m *bus.Message) error {
		fmt.Printf(" [%s] Received '%s'\n", name, m.Body)
		select { // the dots are the work
		case <-time.After(time.Duration(strings.Count(string(m.Body), ".")) * unit):
		case <-hctx.Done():
			return hctx.Err()
		}
		fmt.Printf(" [%s] Done '%s'\n", name, m.Body)
		done()
		return nil
	}
}

func work(ctx context.Context, url, queue, name string, unit time.Duration, count int) error {
	sub, err := bus.OpenSubscriber(ctx, url)
	if err != nil {
		return err
	}
	defer sub.Close()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var finished atomic.Int32
	h := worker(name, unit, func() {
		if count > 0 && int(finished.Add(1)) >= count {
			stop()
		}
	})
	err = sub.Subscribe(ctx, queue, h, bus.Group(queue), bus.Concurrency(1),
		exampleutil.Ready(fmt.Sprintf(" [%s] Waiting for messages in %s. To exit press CTRL+C", name, queue), nil))
	if err != nil {
		return err
	}
	return sub.Close()
}

// demo runs two workers and a producer in one process, which is how the
// pattern can be watched on mem://.
func demo(ctx context.Context, url, queue string, unit time.Duration) error {
	tasks := []string{"First task.", "Second task..", "Third task.", "Fourth task..", "Fifth task."}
	var handled atomic.Int32
	allDone := make(chan struct{})
	done := func() {
		if handled.Add(1) == int32(len(tasks)) {
			close(allDone)
		}
	}
	for _, name := range []string{"worker-1", "worker-2"} {
		sub, err := bus.OpenSubscriber(ctx, url)
		if err != nil {
			return err
		}
		defer sub.Close()
		// Start returns once the worker is live; Close (deferred) stops
		// it after the tasks.
		if _, err := bus.Start(ctx, sub, queue, worker(name, unit, done), bus.Group(queue)); err != nil {
			return err
		}
	}
	if err := produce(ctx, url, queue, tasks); err != nil {
		return err
	}
	select {
	case <-allDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
