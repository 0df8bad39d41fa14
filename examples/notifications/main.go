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
	"errors"
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
		err = subscribe(ctx, *url, *channel, *count)
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

// listener is a running subscription that prints what it receives.
type listener struct {
	sub     bus.Subscriber
	running *bus.Running
	enough  chan struct{} // closed once it received count messages
}

// listen subscribes to channel and returns once Redis (or the broker)
// has confirmed the subscription: what is published from then on reaches
// it.
func listen(ctx context.Context, url, channel string, count int) (*listener, error) {
	sub, err := bus.OpenSubscriber(ctx, url)
	if err != nil {
		return nil, err
	}
	l := &listener{sub: sub, enough: make(chan struct{})}
	var mu sync.Mutex
	seen := 0
	h := func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf("Received message from %s: %s\n", m.Delivery.Topic, m.Body)
		if seen++; count > 0 && seen == count {
			close(l.enough)
		}
		return nil
	}
	if l.running, err = bus.Start(ctx, sub, channel, h); err != nil {
		_ = sub.Close()
		return nil, err
	}
	fmt.Println("Subscribed to " + channel)
	return l, nil
}

// wait blocks until the listener got its count, ended, or ctx ended.
func (l *listener) wait(ctx context.Context) {
	select {
	case <-l.enough:
	case <-l.running.Done():
	case <-ctx.Done():
	}
}

// stop ends the subscription and closes the subscriber.
func (l *listener) stop() error {
	return errors.Join(l.running.Stop(), l.sub.Close())
}

func subscribe(ctx context.Context, url, channel string, count int) error {
	l, err := listen(ctx, url, channel, count)
	if err != nil {
		return err
	}
	l.wait(ctx)
	return l.stop()
}

// demo runs two subscribers and a publisher in one process.
func demo(ctx context.Context, url, channel string) error {
	var ls []*listener
	defer func() {
		for _, l := range ls {
			_ = l.stop()
		}
	}()
	for range 2 {
		l, err := listen(ctx, url, channel, 1)
		if err != nil {
			return err
		}
		ls = append(ls, l)
	}
	if err := publish(ctx, url, channel, []string{"Hello, Redis!"}); err != nil {
		return err
	}
	for _, l := range ls {
		l.wait(ctx)
		if err := l.stop(); err != nil {
			return err
		}
	}
	ls = nil
	return ctx.Err()
}

// canCount reports whether pub's broker counts the receivers of a message.
func canCount(pub bus.Publisher) bool {
	cr, ok := pub.(bus.CapabilityReporter)
	return ok && cr.Capabilities().ReceiverCount
}
