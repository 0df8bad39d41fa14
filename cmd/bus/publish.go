package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/busline/bus"
)

func publishCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCommand("publish", "TOPIC [MESSAGE ...]",
		"Publishes each MESSAGE, or each line of standard input when none is given,\n"+
			"and prints one line per message: its ID, and where the broker tells, how many received it.", stderr)
	key := c.fs.String("key", "", "partition/ordering key of every message")
	typ := c.fs.String("type", "", "event type (default "+bus.DefaultType+")")
	source := c.fs.String("source", "", "event source (default "+bus.DefaultSource+")")
	contentType := c.fs.String("content-type", "", "content type of the bodies")
	meta := metaFlag{}
	c.fs.Var(meta, "meta", "metadata key=value (repeatable)")
	if err := c.parse(args); err != nil {
		return err
	}
	if c.fs.NArg() < 1 {
		return usagef("publish: missing TOPIC (see bus publish -h)")
	}
	topic, bodies := c.fs.Arg(0), c.fs.Args()[1:]
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	pub, err := bus.OpenPublisher(ctx, c.url)
	if err != nil {
		return err
	}
	defer pub.Close()

	send := func(body []byte) error {
		m := &bus.Message{Type: *typ, Source: *source, Key: *key, ContentType: *contentType, Body: body}
		if len(meta) > 0 {
			m.Metadata = make(map[string]string, len(meta))
			for k, v := range meta {
				m.Metadata[k] = v
			}
		}
		if rc, ok := pub.(bus.ReceiverCounter); ok && canCount(pub) {
			n, err := rc.PublishCount(ctx, topic, m)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s sent to %d subscribers\n", m.ID, n)
			return nil
		}
		if err := pub.Publish(ctx, topic, m); err != nil {
			return err
		}
		fmt.Fprintln(stdout, m.ID)
		return nil
	}
	if len(bodies) > 0 {
		for _, b := range bodies {
			if err := send([]byte(b)); err != nil {
				return err
			}
		}
		return pub.Close()
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if err := send(append([]byte(nil), sc.Bytes()...)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("publish: reading standard input: %w", err)
	}
	return pub.Close()
}

// canCount reports whether pub's broker counts the receivers of a message.
func canCount(pub bus.Publisher) bool {
	cr, ok := pub.(bus.CapabilityReporter)
	return ok && cr.Capabilities().ReceiverCount
}
