package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/busline/bus"
)

// errHelp is returned when -h was asked for: usage was printed, exit 0.
var errHelp = errors.New("help requested")

// command holds the flags every command shares.
type command struct {
	fs      *flag.FlagSet
	stderr  io.Writer
	url     string
	timeout time.Duration
}

func newCommand(name, args, summary string, stderr io.Writer) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError), stderr: stderr}
	c.fs.SetOutput(stderr)
	c.fs.StringVar(&c.url, "url", bus.URLFromEnv(""), "broker URL (required); from $BUS_URL when set")
	c.fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up after this long")
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "usage: bus %s [flags] %s\n\n%s\n\nFlags:\n", name, args, summary)
		c.fs.PrintDefaults()
	}
	return c
}

// parse parses args, turning flag errors into usage errors (the flag
// package has already printed the usage).
func (c *command) parse(args []string) error {
	c.fs.SetOutput(io.Discard) // print usage ourselves, once
	err := c.fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.fs.SetOutput(c.stderr)
		c.fs.Usage()
		return errHelp
	}
	if err != nil {
		return usagef("%s: %v (see bus %s -h)", c.fs.Name(), err, c.fs.Name())
	}
	return nil
}

// metaFlag collects repeated -meta key=value flags.
type metaFlag map[string]string

func (m metaFlag) String() string { return fmt.Sprint(map[string]string(m)) }

func (m metaFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	m[k] = v
	return nil
}
