package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/busline/bus"
)

func consumeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("consume", "TOPIC",
		"Prints the messages received from TOPIC until -count messages arrived, -timeout\n"+
			"passed with none, or an interrupt. Without -group it is a broadcast subscriber.\n"+
			"Once the subscription is live it writes \"bus: consuming TOPIC\" to standard error.", stderr)
	c.timeout = 0
	c.fs.Lookup("timeout").DefValue = "0"
	c.fs.Lookup("timeout").Usage = "stop after this long without a message (0: never)"
	group := c.fs.String("group", "", "consumer group to join (default: broadcast)")
	count := c.fs.Int("count", 0, "stop after this many messages (0: no limit)")
	format := c.fs.String("format", "raw", "output: raw (the body, one per line) or json (the envelope)")
	latest := c.fs.Bool("latest", false, "a new group starts at the latest message instead of the earliest")
	if err := c.parse(args); err != nil {
		return err
	}
	if c.fs.NArg() != 1 {
		return usagef("consume: want exactly one TOPIC (see bus consume -h)")
	}
	if *format != "raw" && *format != "json" {
		return usagef("consume: -format must be raw or json, got %q", *format)
	}
	if *count < 0 {
		return usagef("consume: -count must not be negative")
	}
	topic := c.fs.Arg(0)
	sub, err := bus.OpenSubscriber(ctx, c.url)
	if err != nil {
		return err
	}
	defer sub.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		seen int
		last = time.Now()
	)
	h := func(_ context.Context, m *bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if *count > 0 && seen >= *count {
			// Not ours to take: the retry wait is cut short by the stop,
			// and the message is left for redelivery.
			return errors.New("consume: count reached")
		}
		if err := printMessage(stdout, m, *format); err != nil {
			return err
		}
		seen++
		last = time.Now()
		if *count > 0 && seen >= *count {
			cancel()
		}
		return nil
	}
	// The ready line goes to standard error, so that scripts can wait for
	// it and standard output holds only messages.
	opts := []bus.SubscribeOption{bus.Retry(bus.RetryForever(time.Second, time.Second)),
		bus.OnReady(func() { fmt.Fprintf(stderr, "bus: consuming %s\n", topic) })}
	if *group != "" {
		opts = append(opts, bus.Group(*group))
	}
	if *latest {
		opts = append(opts, bus.StartFrom(bus.StartLatest))
	}
	if c.timeout > 0 {
		go func() {
			t := time.NewTicker(c.timeout / 10)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					mu.Lock()
					idle := time.Since(last) > c.timeout
					mu.Unlock()
					if idle {
						cancel()
						return
					}
				}
			}
		}()
	}
	if err := sub.Subscribe(ctx, topic, h, opts...); err != nil {
		return err
	}
	if err := sub.Close(); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if *count > 0 && seen < *count {
		return fmt.Errorf("consume: got %d of %d messages before stopping", seen, *count)
	}
	return nil
}

// envelope is the JSON form consume -format json prints.
type envelope struct {
	ID          string            `json:"id"`
	Type        string            `json:"type"`
	Source      string            `json:"source"`
	Subject     string            `json:"subject,omitempty"`
	Time        time.Time         `json:"time,omitzero"`
	ContentType string            `json:"content_type,omitempty"`
	Key         string            `json:"key,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Body        string            `json:"body"`
	Topic       string            `json:"topic"`
	Redelivered bool              `json:"redelivered,omitempty"`
}

func printMessage(w io.Writer, m *bus.Message, format string) error {
	if format == "raw" {
		_, err := fmt.Fprintf(w, "%s\n", m.Body)
		return err
	}
	b, err := json.Marshal(envelope{
		ID: m.ID, Type: m.Type, Source: m.Source, Subject: m.Subject, Time: m.Time, ContentType: m.ContentType,
		Key: m.Key, Metadata: m.Metadata, Body: string(m.Body), Topic: m.Delivery.Topic, Redelivered: m.Delivery.Redelivered,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
