// Command events shows events with consumer groups: every group gets every
// event, the members of one group share them, and the events of one key
// (an order) stay in order.
//
//	go run ./examples/events consume -group billing   # start two of these
//	go run ./examples/events consume -group shipping
//	go run ./examples/events produce -orders 3 -steps 4
//	go run ./examples/events demo                     # all in one process (mem://)
//
// Works on RabbitMQ (exchange topology), Kafka and mem://. Redis pub/sub
// has no groups and says so.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/busline/bus"
	"github.com/busline/bus/examples/internal/exampleutil"
)

var steps = []string{"order.created", "order.paid", "order.packed", "order.shipped", "order.delivered"}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: events produce|consume|demo [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("events "+os.Args[1], flag.ExitOnError)
	url := exampleutil.URLFlag(fs)
	topic := fs.String("topic", "orders", "topic")
	group := fs.String("group", "billing", "consume: consumer group")
	name := fs.String("name", "", "consume: member name printed with each event (default: the group)")
	count := fs.Int("count", 0, "consume: exit after this many events (0: run until interrupted)")
	orders := fs.Int("orders", 3, "produce: number of orders")
	nsteps := fs.Int("steps", len(steps), "produce: events per order (at most 5)")
	_ = fs.Parse(os.Args[2:])
	if *name == "" {
		*name = *group
	}
	ctx, cancel := exampleutil.SignalContext()
	defer cancel()
	var err error
	switch os.Args[1] {
	case "produce":
		err = produce(ctx, *url, *topic, *orders, min(*nsteps, len(steps)))
	case "consume":
		err = consume(ctx, *url, *topic, *group, *name, *count, nil, nil)
	case "demo":
		err = demo(ctx, *url, *topic)
	default:
		err = fmt.Errorf("unknown command %q (want produce, consume or demo)", os.Args[1])
	}
	if err != nil {
		exampleutil.Fatal("events", err)
	}
}

func produce(ctx context.Context, url, topic string, orders, nsteps int) error {
	pub, err := bus.OpenPublisher(ctx, url)
	if err != nil {
		return err
	}
	defer pub.Close()
	for s := 0; s < nsteps; s++ {
		var batch []*bus.Message
		for o := 1; o <= orders; o++ {
			key := "order-" + strconv.Itoa(o)
			batch = append(batch, &bus.Message{Type: steps[s], Subject: key, Key: key, Body: []byte(strconv.Itoa(s))})
		}
		// One Publish sends the batch together; the key keeps each order's
		// events in sequence for every group.
		if err := pub.Publish(ctx, topic, batch...); err != nil {
			return err
		}
	}
	fmt.Printf("published %d events for %d orders\n", orders*nsteps, orders)
	return pub.Close()
}

// consume prints the events the group hands this member; ready and
// onEvent, when not nil, are called when it is live and after each event.
func consume(ctx context.Context, url, topic, group, name string, count int, ready, onEvent func()) error {
	sub, err := bus.OpenSubscriber(ctx, url)
	if err != nil {
		return err
	}
	defer sub.Close()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	last := map[string]int{}
	seen := 0
	h := func(_ context.Context, m *bus.Message) error {
		step, _ := strconv.Atoi(string(m.Body))
		mu.Lock()
		defer mu.Unlock()
		prev, ok := last[m.Key]
		order := "in order"
		if ok && step <= prev && !m.Delivery.Redelivered {
			order = "OUT OF ORDER"
		}
		last[m.Key] = step
		fmt.Printf("[%s] %s %s %s\n", name, m.Key, m.Type, order)
		if seen++; count > 0 && seen >= count {
			stop()
		}
		if onEvent != nil {
			onEvent()
		}
		return nil
	}
	if err := sub.Subscribe(ctx, topic, h, bus.Group(group), bus.Concurrency(4),
		exampleutil.Ready(fmt.Sprintf("[%s] ready in group %s", name, group), ready)); err != nil {
		return err
	}
	return sub.Close()
}

// demo runs two billing members and one shipping member with a producer in
// one process.
func demo(ctx context.Context, url, topic string) error {
	const orders = 3
	total := int32(orders * len(steps))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var shipping, billing atomic.Int32
	allDone := make(chan struct{})
	var once sync.Once
	members := []struct{ group, name string }{{"billing", "billing-1"}, {"billing", "billing-2"}, {"shipping", "shipping-1"}}
	errs := make(chan error, len(members))
	var wg sync.WaitGroup
	for _, m := range members {
		counter := &billing
		if m.group == "shipping" {
			counter = &shipping
		}
		onEvent := func() {
			counter.Add(1)
			if billing.Load() >= total && shipping.Load() >= total {
				once.Do(func() { close(allDone) })
			}
		}
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- consume(ctx, url, topic, m.group, m.name, 0, func() { close(ready) }, onEvent)
		}()
		select {
		case <-ready:
		case err := <-errs:
			return err
		}
	}
	if err := produce(ctx, url, topic, orders, len(steps)); err != nil {
		return err
	}
	select {
	case <-allDone:
	case err := <-errs:
		return fmt.Errorf("consumer stopped: %v", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	cancel()
	wg.Wait()
	fmt.Printf("billing got %d events, shipping got %d\n", billing.Load(), shipping.Load())
	return nil
}
