// Command notifications is the seed's Redis pub/sub pair on any broker:
// every running subscriber gets every notification, and the publisher
// prints how many subscribers received it where the broker can tell.
//
//	go run ./examples/notifications subscribe          # start a few of these
//	go run ./examples/notifications publish "Hello, Redis!"
//	go run ./examples/notifications demo               # both in one process (mem://)
//
// Subscribers are broadcast subscriptions: a notification published while
// none runs is gone, as with Redis pub/sub.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"

	"github.com/busline/bus"
	"github.com/busline/bus/examples/internal/exampleutil"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: notifications publish|subscribe|demo [flags] [message ...]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("notifications "+os.Args[1], flag.ExitOnError)
	url := exampleutil.URLFlag(fs)
	channel := fs.String("channel", "notifications", "channel (topic) name")
	count := fs.Int("count", 0, "subscribe: exit after this many messages (0: run until interrupted)")
	_ = fs.Parse(os.Args[2:])
	ctx, cancel := exampleutil.SignalContext()
	defer cancel()
	var err error
	switch os.Args[1] {
	case "publish":
		msgs := fs.Args()
		if len(msgs) == 0 {
			msgs = []string{"Hello, Redis!"}
		}
		err = publish(ctx, *url, *channel, msgs)
	case "subscribe":
		err = subscribe(ctx, *url, *channel, *count, nil)
	case "demo":
		err = demo(ctx, *url, *channel)
	default:
		err = fmt.Errorf("unknown command %q (want publish, subscribe or demo)", os.Args[1])
	}
	if err != nil {
		exampleutil.Fatal("notifications", err)
	}
}

func publish(ctx context.Context, url, channel string, texts []string) error {
	pub, err := bus.OpenPublisher(ctx, url)
	if err != nil {
		return err
	}
	defer pub.Close()
	for _, text := range texts {
		m := &bus.Message{Type: "notification", ContentType: "text/plain", Body: []byte(text)}
		if rc, ok := pub.(bus.ReceiverCounter); ok && canCount(pub) {
			n, err := rc.PublishCount(ctx, channel, m)
			if err != nil {
				return err
			}
			fmt.Printf("Message sent to %d subscribers.\n", n)
			continue
		}
		if err := pub.Publish(ctx, channel, m); err != nil {
			return err
		}
		fmt.Println("Message sent.")
	}
	return pub.Close()
}

func subscribe(ctx context.Context, url, channel string, count int, ready func()) error {
	sub, err := bus.OpenSubscriber(ctx, url)
	if err != nil {
		return err
	}
	defer sub.Close()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	seen := 0
	h := func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf("Received message from %s: %s\n", m.Delivery.Topic, m.Body)
		if seen++; count > 0 && seen >= count {
			stop()
		}
		return nil
	}
	if err := sub.Subscribe(ctx, channel, h, exampleutil.Ready("Subscribed to "+channel, ready)); err != nil {
		return err
	}
	return sub.Close()
}

// demo runs two subscribers and a publisher in one process.
func demo(ctx context.Context, url, channel string) error {
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- subscribe(ctx, url, channel, 1, func() { close(ready) })
		}()
		select {
		case <-ready:
		case err := <-errs:
			return err
		}
	}
	if err := publish(ctx, url, channel, []string{"Hello, Redis!"}); err != nil {
		return err
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// canCount reports whether pub's broker counts the receivers of a message.
func canCount(pub bus.Publisher) bool {
	cr, ok := pub.(bus.CapabilityReporter)
	return ok && cr.Capabilities().ReceiverCount
}
