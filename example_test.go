package bus_test

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/busline/bus"
	_ "github.com/busline/bus/mem" // registers mem://
)

// Publishing returns once the broker has taken the message; Publish fills
// the ID when it is empty.
func ExamplePublisher() {
	ctx := context.Background()
	pub, err := bus.OpenPublisher(ctx, "mem://example-publish")
	if err != nil {
		panic(err)
	}
	defer pub.Close()

	msg := &bus.Message{Type: "order.created", Key: "customer-7", Body: []byte(`{"order":42}`)}
	if err := pub.Publish(ctx, "orders", msg); err != nil {
		panic(err)
	}
	fmt.Println(msg.ID != "", msg.Type)
	// Output: true order.created
}

// A subscription runs until its context ends; OnReady says when it is live.
func ExampleSubscriber() {
	ctx, cancel := context.WithCancel(context.Background())
	url := "mem://example-subscribe"
	sub, _ := bus.OpenSubscriber(ctx, url)
	pub, _ := bus.OpenPublisher(ctx, url)
	defer sub.Close()
	defer pub.Close()

	ready := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- sub.Subscribe(ctx, "greetings", func(ctx context.Context, m *bus.Message) error {
			fmt.Printf("%s: %s\n", m.Type, m.Body)
			cancel() // one message is enough here
			return nil
		}, bus.OnReady(func() { close(ready) }))
	}()
	<-ready
	_ = pub.Publish(ctx, "greetings", &bus.Message{Type: "greeting", Body: []byte("hello")})
	fmt.Println(<-done)
	// Output:
	// greeting: hello
	// <nil>
}

// Two groups each get every message; members of one group share them.
func ExampleGroup() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := "mem://example-groups"
	sub, _ := bus.OpenSubscriber(ctx, url)
	pub, _ := bus.OpenPublisher(ctx, url)
	defer sub.Close()
	defer pub.Close()

	var mu sync.Mutex
	var wg sync.WaitGroup
	var got []string
	wg.Add(4)
	for _, group := range []string{"billing", "shipping"} {
		ready := make(chan struct{})
		go sub.Subscribe(ctx, "orders", func(ctx context.Context, m *bus.Message) error {
			mu.Lock()
			got = append(got, group+" "+string(m.Body))
			mu.Unlock()
			wg.Done()
			return nil
		}, bus.Group(group), bus.OnReady(func() { close(ready) }))
		<-ready
	}
	_ = pub.Publish(ctx, "orders", &bus.Message{Body: []byte("order-1")}, &bus.Message{Body: []byte("order-2")})
	wg.Wait()
	sort.Strings(got)
	for _, s := range got {
		fmt.Println(s)
	}
	// Output:
	// billing order-1
	// billing order-2
	// shipping order-1
	// shipping order-2
}

// The broker is chosen by URL, usually from BUS_URL; unknown schemes and
// parameters are errors that say what is wrong.
func ExampleOpenPublisher() {
	ctx := context.Background()
	pub, err := bus.OpenPublisher(ctx, "mem://?max_message_bytes=1024")
	fmt.Println(err)
	defer pub.Close()

	_, err = bus.OpenPublisher(ctx, "nats://user:secret@127.0.0.1:4222/")
	fmt.Println(err)
	_, err = bus.OpenPublisher(ctx, "mem://?max_mesage_bytes=1024")
	fmt.Println(err)
	// Output:
	// <nil>
	// bus: invalid argument: unknown URL scheme "nats" (registered: mem; forgotten import of the adapter package?)
	// mem: invalid argument: unknown URL parameter(s) max_mesage_bytes (known: max_message_bytes)
}
