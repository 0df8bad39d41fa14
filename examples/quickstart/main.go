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

	// Events are Go values: bus.Encode publishes them as JSON with their
	// type, bus.Handle decodes them for the handler.
	type greeting struct {
		Text string `json:"text"`
	}
	const n = 3
	received := make(chan greeting, n)
	// bus.Start returns once the subscription is live, so nothing
	// published from here on is missed, even on Redis pub/sub.
	running, err := bus.Start(ctx, sub, topic, bus.Handle(func(_ context.Context, g greeting, _ *bus.Message) error {
		received <- g
		return nil
	}))
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer running.Stop()

	msgs := make([]*bus.Message, n)
	for i := range msgs {
		m, err := bus.Encode("greeting.sent", greeting{Text: fmt.Sprintf("hello %d", i+1)}, nil)
		if err != nil {
			return err
		}
		m.Key = "quickstart" // one key: delivered in order
		msgs[i] = m
	}
	if err := pub.Publish(ctx, topic, msgs...); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	fmt.Printf("published %d messages\n", n)
	for range n {
		select {
		case g := <-received:
			fmt.Printf("received greeting.sent %q\n", g.Text)
		case <-ctx.Done():
			return fmt.Errorf("waiting for messages: %w", ctx.Err())
		}
	}
	if err := running.Stop(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	fmt.Println("done")
	return nil
}
