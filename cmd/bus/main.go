// Command bus publishes, consumes, benchmarks and health-checks any broker
// busline supports, chosen by URL (-url, else $BUS_URL, else mem://).
//
//	bus publish -url amqp://guest:guest@127.0.0.1:5672/ orders '{"id":1}'
//	echo hello | bus publish orders
//	bus consume -group billing -count 10 -format json orders
//	bus bench -n 10000 -size 1024 orders
//	bus ping -topic orders
//
// Exit status: 0 on success, 1 when the broker could not do what was asked
// (unreachable, refused, timed out), 2 for a usage error (unknown command or
// flag, missing argument, bad URL or URL parameter). Errors are one line on
// standard error, starting with "bus: ".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
	_ "github.com/busline/bus/amqp"
	_ "github.com/busline/bus/kafka"
	_ "github.com/busline/bus/mem"
	_ "github.com/busline/bus/redispubsub"
)

// Exit codes a script can rely on.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError marks errors that exit with exitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// quietRedis drops go-redis's own process-wide log lines (dial retries),
// which would break the one-line error contract; the adapter's error says
// what failed.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func main() {
	goredis.SetLogger(quietRedis{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const topUsage = `usage: bus <command> [flags] [arguments]

Commands:
  publish   publish messages given as arguments, or one per line of standard input
  consume   print messages received from a topic
  bench     measure publish throughput and end-to-end latency
  ping      check that the broker answers and the topic can be subscribed to

Every command takes -url (default $BUS_URL, else mem://); "bus <command> -h" lists its flags.
Exit status: 0 success, 1 broker failure, 2 usage error.
`

// run is the whole command, separated from main for tests.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "publish":
		err = publishCmd(ctx, rest, stdin, stdout, stderr)
	case "consume":
		err = consumeCmd(ctx, rest, stdout, stderr)
	case "bench":
		err = benchCmd(ctx, rest, stdout, stderr)
	case "ping":
		err = pingCmd(ctx, rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, topUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "bus: unknown command %q (want publish, consume, bench or ping)\n", cmd)
		return exitUsage
	}
	return report(err, stderr)
}

// report prints err as one line and maps it to an exit code.
func report(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, bus.ErrInvalid) {
		fmt.Fprintln(stderr, "bus:", oneLine(err))
		return exitUsage
	}
	fmt.Fprintln(stderr, "bus:", oneLine(err))
	return exitFail
}

func oneLine(err error) string {
	b := []byte(strings.TrimPrefix(err.Error(), "bus: "))
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}
