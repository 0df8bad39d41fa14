package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/busline/bus"
)

func pingCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("ping", "",
		"Connects a publisher and a subscriber; with -topic, also subscribes to the topic\n"+
			"until the broker confirms it. Prints \"ok\" and the time taken.", stderr)
	c.timeout = 10 * time.Second
	c.fs.Lookup("timeout").DefValue = "10s"
	topic := c.fs.String("topic", "", "topic to check (default: none)")
	group := c.fs.String("group", "", "subscribe to -topic in this group instead of as a broadcast subscriber")
	if err := c.parse(args); err != nil {
		return err
	}
	if c.fs.NArg() != 0 {
		return usagef("ping: unexpected argument %q (see bus ping -h)", c.fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	pub, err := bus.OpenPublisher(ctx, c.url)
	if err != nil {
		return err
	}
	defer pub.Close()
	sub, err := bus.OpenSubscriber(ctx, c.url)
	if err != nil {
		return err
	}
	defer sub.Close()
	if *topic != "" {
		subCtx, stop := context.WithCancel(ctx)
		defer stop()
		ready := make(chan struct{})
		done := make(chan error, 1)
		opts := []bus.SubscribeOption{bus.OnReady(func() { close(ready) }), bus.StartFrom(bus.StartLatest)}
		if *group != "" {
			opts = append(opts, bus.Group(*group))
		}
		go func() {
			done <- sub.Subscribe(subCtx, *topic, func(context.Context, *bus.Message) error {
				return fmt.Errorf("ping: not consuming") // never ack: leave messages for real consumers
			}, opts...)
		}()
		select {
		case <-ready:
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("ping: topic %q: %w", *topic, err)
		case <-ctx.Done():
			return fmt.Errorf("ping: topic %q not ready: %w", *topic, ctx.Err())
		}
		stop()
		<-done
	}
	fmt.Fprintf(stdout, "ok %s %v\n", bus.RedactURL(c.url), time.Since(start).Round(time.Millisecond))
	return nil
}
