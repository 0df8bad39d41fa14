// Command quickstart publishes three events and consumes them in one
// process. It runs on the in-process broker by default; set BUS_URL (or
// -url) to run the same code on RabbitMQ, Kafka or Redis:
//
//	go run ./examples/quickstart
//	BUS_URL=amqp://guest:guest@127.0.0.1:5672/ go run ./examples/quickstart
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/busline/bus"
	_ "github.com/busline/bus/amqp"        // amqp://
	_ "github.com/busline/bus/kafka"       // kafka://
	_ "github.com/busline/bus/mem"         // mem://, the default
	_ "github.com/busline/bus/redispubsub" // redis://
)

func main() {
	url := flag.String("url", bus.URLFromEnv("mem://"), "broker URL (default $BUS_URL, else mem://)")
	topic := flag.String("topic", "quickstart", "topic to use")
	flag.Parse()
	if err := run(*url, *topic); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(url, topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fmt.Println("busline quickstart on", bus.RedactURL(url))

	sub, err := bus.OpenSubscriber(ctx, url)
	if err != nil {
		return err
	}
	defer sub.Close()
	pub, err := bus.OpenPublisher(ctx, url)
	if err != nil {
		return err
	}
	defer pub.Close()

	const n = 3
	received := make(chan *bus.Message, n)
	ready := make(chan struct{})
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	subErr := make(chan error, 1)
	go func() {
		subErr <- sub.Subscribe(subCtx, topic, func(ctx context.Context, m *bus.Message) error {
			received <- m
			return nil
		}, bus.OnReady(func() { close(ready) }))
	}()
	select {
	case <-ready:
	case err := <-subErr:
		return fmt.Errorf("subscribe: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("subscribe: not ready: %w", ctx.Err())
	}

	msgs := make([]*bus.Message, n)
	for i := range msgs {
		msgs[i] = &bus.Message{Type: "greeting.sent", Key: "quickstart", ContentType: "text/plain", Body: []byte(fmt.Sprintf("hello %d", i+1))}
	}
	if err := pub.Publish(ctx, topic, msgs...); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	fmt.Printf("published %d messages\n", n)
	for range n {
		select {
		case m := <-received:
			fmt.Printf("received %s %q\n", m.Type, m.Body)
		case <-ctx.Done():
			return fmt.Errorf("waiting for messages: %w", ctx.Err())
		}
	}
	stop()
	if err := <-subErr; err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	fmt.Println("done")
	return nil
}
