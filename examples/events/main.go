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
	"errors"
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
		err = consume(ctx, *url, *topic, *group, *name, *count)
	case "demo":
		err = demo(ctx, *url, *topic)
	default:
		err = fmt.Errorf("unknown command %q (want produce, consume or demo)", os.Args[1])
	}
	if err != nil {
		exampleutil.Fatal("events", err)
	}
}

// orderEvent is the body of every step's event; its type (order.created,
// order.paid, ...) is the message's Type.
type orderEvent struct {
	Order string `json:"order"`
	Step  int    `json:"step"`
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
			m, err := bus.Encode(steps[s], orderEvent{Order: key, Step: s}, nil)
			if err != nil {
				return err
			}
			m.Subject, m.Key = key, key
			batch = append(batch, m)
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

// member is one running member of a group: it prints each event it gets,
// with whether it came in order for its order, and calls onEvent after.
type member struct {
	sub     bus.Subscriber
	running *bus.Running
}

// join starts a member of group and returns once it is live.
func join(ctx context.Context, url, topic, group, name string, onEvent func()) (*member, error) {
	sub, err := bus.OpenSubscriber(ctx, url)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	last := map[string]int{}
	show := func(_ context.Context, e orderEvent, m *bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		prev, ok := last[e.Order]
		order := "in order"
		if ok && e.Step <= prev && !m.Delivery.Redelivered {
			order = "OUT OF ORDER"
		}
		last[e.Order] = e.Step
		fmt.Printf("[%s] %s %s %s\n", name, e.Order, m.Type, order)
		if onEvent != nil {
			onEvent()
		}
		return nil
	}
	// Each step's type is routed to the handler; a type this member does
	// not know goes to the dead letter topic.
	r := bus.NewRouter()
	for _, step := range steps {
		r.Route(step, bus.Handle(show))
	}
	running, err := bus.Start(ctx, sub, topic, r.Handle, bus.Group(group), bus.Concurrency(4))
	if err != nil {
		_ = sub.Close()
		return nil, err
	}
	fmt.Printf("[%s] ready in group %s\n", name, group)
	return &member{sub: sub, running: running}, nil
}

// leave stops the member and closes its subscriber.
func (m *member) leave() error {
	err := m.running.Stop()
	return errors.Join(err, m.sub.Close())
}

// consume runs one member until ctx ends, or until it got count events.
func consume(ctx context.Context, url, topic, group, name string, count int) error {
	enough := make(chan struct{})
	var once sync.Once
	var seen atomic.Int32
	m, err := join(ctx, url, topic, group, name, func() {
		if count > 0 && int(seen.Add(1)) >= count {
			once.Do(func() { close(enough) })
		}
	})
	if err != nil {
		return err
	}
	select {
	case <-enough:
	case <-m.running.Done():
	case <-ctx.Done():
	}
	return m.leave()
}

// demo runs two billing members and one shipping member with a producer in
// one process.
func demo(ctx context.Context, url, topic string) error {
	const orders = 3
	total := int32(orders * len(steps))
	var shipping, billing atomic.Int32
	allDone := make(chan struct{})
	var once sync.Once
	var members []*member
	defer func() {
		for _, m := range members {
			_ = m.leave()
		}
	}()
	for _, mm := range []struct{ group, name string }{{"billing", "billing-1"}, {"billing", "billing-2"}, {"shipping", "shipping-1"}} {
		counter := &billing
		if mm.group == "shipping" {
			counter = &shipping
		}
		m, err := join(ctx, url, topic, mm.group, mm.name, func() {
			counter.Add(1)
			if billing.Load() >= total && shipping.Load() >= total {
				once.Do(func() { close(allDone) })
			}
		})
		if err != nil {
			return err
		}
		members = append(members, m)
	}
	if err := produce(ctx, url, topic, orders, len(steps)); err != nil {
		return err
	}
	select {
	case <-allDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, m := range members {
		if err := m.leave(); err != nil {
			return err
		}
	}
	members = nil
	fmt.Printf("billing got %d events, shipping got %d\n", billing.Load(), shipping.Load())
	return nil
}
