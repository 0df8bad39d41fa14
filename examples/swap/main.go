// Command swap is one program whose broker is chosen only by its config:
// the same binary publishes and consumes on mem://, RabbitMQ, Kafka or Redis
// depending on the URL in its config file (or $BUS_URL). See
// examples/README.md for URLs to try.
//
//	go run ./examples/swap -config swap.json
//	BUS_URL=redis://127.0.0.1:6379/0 go run ./examples/swap
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/busline/bus"
	"github.com/busline/bus/examples/internal/exampleutil"
)

// config is the program's config file: only the broker URL and the topic.
type config struct {
	URL   string `json:"url"`
	Topic string `json:"topic"`
}

func main() {
	path := flag.String("config", "", `JSON config file: {"url": "...", "topic": "..."} (default: $BUS_URL, topic "swap")`)
	flag.Parse()
	cfg := config{URL: bus.URLFromEnv("mem://"), Topic: "swap"}
	if *path != "" {
		b, err := os.ReadFile(*path)
		if err != nil {
			exampleutil.Fatal("swap", err)
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			exampleutil.Fatal("swap", fmt.Errorf("config %s: %w", *path, err))
		}
	}
	ctx, cancel := exampleutil.SignalContext()
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		exampleutil.Fatal("swap", err)
	}
}

// run is broker-agnostic: nothing below names a broker.
func run(ctx context.Context, cfg config) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sub, err := bus.OpenSubscriber(ctx, cfg.URL)
	if err != nil {
		return err
	}
	defer sub.Close()
	pub, err := bus.OpenPublisher(ctx, cfg.URL)
	if err != nil {
		return err
	}
	defer pub.Close()

	got := make(chan *bus.Message, 1)
	running, err := bus.Start(ctx, sub, cfg.Topic, func(_ context.Context, m *bus.Message) error {
		got <- m
		return nil
	})
	if err != nil {
		return err
	}
	defer running.Stop()
	caps := bus.Capabilities{}
	if cr, ok := sub.(bus.CapabilityReporter); ok {
		caps = cr.Capabilities()
	}
	msg := &bus.Message{Type: "swap.hello", Body: []byte("same code, any broker")}
	if err := pub.Publish(ctx, cfg.Topic, msg); err != nil {
		return err
	}
	select {
	case m := <-got:
		fmt.Printf("on %s: received %q (at-least-once: %v, groups: %v)\n", bus.RedactURL(cfg.URL), m.Body, caps.AtLeastOnce, caps.Groups)
	case <-ctx.Done():
		return ctx.Err()
	}
	return running.Stop()
}
