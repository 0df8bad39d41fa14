package redispubsub_test

import (
	"context"
	"fmt"
	"log"

	"github.com/busline/bus"
	"github.com/busline/bus/redispubsub"
)

// The seed's publisher: PUBLISH, then print how many subscribers got it.
func ExamplePublisher_PublishCount() {
	ctx := context.Background()
	cfg, err := redispubsub.ParseURL("redis://127.0.0.1:6379?format=raw")
	if err != nil {
		log.Fatal(err)
	}
	pub, err := redispubsub.NewPublisher(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	n, err := pub.PublishCount(ctx, "notifications", &bus.Message{Body: []byte("Hello, Redis!")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Message sent to %d subscribers\n", n)
}

// The seed's subscriber, plus a pattern subscription.
func ExampleSubscriber_Subscribe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := bus.OpenSubscriber(ctx, "redis://127.0.0.1:6379")
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	go func() {
		_ = sub.Subscribe(ctx, "orders.*", func(ctx context.Context, m *bus.Message) error {
			fmt.Printf("%s on %s\n", m.Body, m.Delivery.Topic)
			return nil
		})
	}()
	err = sub.Subscribe(ctx, "notifications", func(ctx context.Context, m *bus.Message) error {
		fmt.Printf("Received message: %s\n", m.Body)
		return nil
	}, bus.OnReady(func() { log.Print("subscribed") }))
	if err != nil {
		log.Fatal(err)
	}
}
