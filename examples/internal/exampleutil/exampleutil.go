// Package exampleutil holds what every example program shares: the -url
// flag, the adapter imports, and running a subscription until an interrupt.
package exampleutil

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/busline/bus"
	_ "github.com/busline/bus/amqp"        // amqp://, amqps://
	_ "github.com/busline/bus/kafka"       // kafka://
	_ "github.com/busline/bus/mem"         // mem://
	_ "github.com/busline/bus/redispubsub" // redis://, rediss://
)

// URLFlag registers -url on fs, defaulting to $BUS_URL or mem://.
func URLFlag(fs *flag.FlagSet) *string {
	return fs.String("url", bus.URLFromEnv("mem://"), "broker URL; from $BUS_URL when set, else mem://")
}

// SignalContext is cancelled by an interrupt or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Fatal prints err as one line prefixed with the program name and exits 1.
func Fatal(prog string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	os.Exit(1)
}

// Ready returns an OnReady option that prints line to stdout once the
// subscription is live, so that scripts and tests can wait for it, and then
// calls then when it is not nil.
func Ready(line string, then func()) bus.SubscribeOption {
	return bus.OnReady(func() {
		fmt.Println(line)
		if then != nil {
			then()
		}
	})
}
