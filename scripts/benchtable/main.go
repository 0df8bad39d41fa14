// Command benchtable is the helper behind scripts/bench.sh. It turns
// `go test -bench` output into Markdown tables of medians, and does the
// few other things the script needs from Go:
//
//	benchtable table [-match REGEXP] < bench.txt   medians as Markdown, one table per package
//	benchtable versions -amqp URL -redis ADDR      the brokers' versions, one line
//	benchtable kfake                               run a 3-broker kfake cluster until killed
//	benchtable splice -file README.md < block.md   replace the text between the bench markers
//
// table reads any number of runs of any number of packages (-count N, or
// rounds appended one after another) and prints, per package, one row per
// benchmark (its full name without the -GOMAXPROCS suffix) and one column
// per unit any of its benchmarks reported: ns/op, B/op, allocs/op and
// every custom metric (b.ReportMetric), in the order they first appear.
// A cell is the median of that benchmark's runs; n is how many runs.
// Benchmarks added later, sub-benchmarks and new metrics need no change
// here.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtable table|versions|kfake|splice [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "table":
		err = tableCmd(args, os.Stdin, os.Stdout)
	case "versions":
		err = versionsCmd(args, os.Stdout)
	case "kfake":
		err = kfakeCmd(os.Stdout)
	case "splice":
		err = spliceCmd(args, os.Stdin)
	default:
		err = fmt.Errorf("unknown command %q (want table, versions, kfake or splice)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// sample is one benchmark line: the value of each unit.
type sample map[string]float64

// pkgResults holds the runs of one package's benchmarks, in first-seen
// order.
type pkgResults struct {
	name    string
	benches []string
	units   []string
	runs    map[string][]sample
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads `go test -bench` output. Lines that are not results of a
// benchmark matching match are skipped.
func parse(r io.Reader, match *regexp.Regexp) ([]*pkgResults, error) {
	var pkgs []*pkgResults
	byName := map[string]*pkgResults{}
	cur := &pkgResults{name: "", runs: map[string][]sample{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			p = strings.TrimSpace(p)
			if byName[p] == nil {
				byName[p] = &pkgResults{name: p, runs: map[string][]sample{}}
				pkgs = append(pkgs, byName[p])
			}
			cur = byName[p]
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // a name printed alone, or a log line
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		if match != nil && !match.MatchString(name) {
			continue
		}
		s := sample{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: value %q: %w", line, f[i], err)
			}
			s[f[i+1]] = v
			if !slices.Contains(cur.units, f[i+1]) {
				cur.units = append(cur.units, f[i+1])
			}
		}
		if cur.name == "" && byName[""] == nil {
			byName[""] = cur
			pkgs = append(pkgs, cur)
		}
		if _, seen := cur.runs[name]; !seen {
			cur.benches = append(cur.benches, name)
		}
		cur.runs[name] = append(cur.runs[name], s)
	}
	return pkgs, sc.Err()
}

// median returns the median of v (the mean of the middle two for an even
// count).
func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// format prints v with thousands separators when it is large and three
// significant digits when it is small.
func format(v float64) string {
	if v >= 1000 || v <= -1000 || v == float64(int64(v)) {
		s := strconv.FormatInt(int64(v+0.5), 10)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func writeTables(w io.Writer, pkgs []*pkgResults) {
	for _, p := range pkgs {
		if len(p.benches) == 0 {
			continue
		}
		if p.name != "" {
			fmt.Fprintf(w, "**%s**\n\n", p.name)
		}
		fmt.Fprintf(w, "| benchmark | n | %s |\n", strings.Join(p.units, " | "))
		fmt.Fprintf(w, "|---|---|%s\n", strings.Repeat("---|", len(p.units)))
		for _, b := range p.benches {
			runs := p.runs[b]
			cells := make([]string, len(p.units))
			for i, u := range p.units {
				var v []float64
				for _, s := range runs {
					if x, ok := s[u]; ok {
						v = append(v, x)
					}
				}
				if len(v) > 0 {
					cells[i] = format(median(v))
				}
			}
			fmt.Fprintf(w, "| %s | %d | %s |\n", strings.TrimPrefix(b, "Benchmark"), len(runs), strings.Join(cells, " | "))
		}
		fmt.Fprintln(w)
	}
}

func tableCmd(args []string, r io.Reader, w io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	match := fs.String("match", "", "only benchmarks whose full name matches this regexp")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var re *regexp.Regexp
	if *match != "" {
		var err error
		if re, err = regexp.Compile(*match); err != nil {
			return err
		}
	}
	pkgs, err := parse(r, re)
	if err != nil {
		return err
	}
	writeTables(w, pkgs)
	return nil
}

// versionsCmd prints the RabbitMQ and Redis server versions.
func versionsCmd(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("versions", flag.ContinueOnError)
	amqpURL := fs.String("amqp", "", "RabbitMQ URL")
	redisAddr := fs.String("redis", "", "Redis host:port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	if *amqpURL != "" {
		v := "unreachable"
		conn, err := amqp091.DialConfig(*amqpURL, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
		if err == nil {
			v = fmt.Sprint(conn.Properties["version"])
			conn.Close()
		}
		out = append(out, "RabbitMQ "+v)
	}
	if *redisAddr != "" {
		v := "unreachable"
		c := goredis.NewClient(&goredis.Options{Addr: *redisAddr, DisableIdentity: true})
		if info, err := c.Info(ctx, "server").Result(); err == nil {
			for l := range strings.SplitSeq(info, "\n") {
				if s, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
					v = s
				}
			}
		}
		c.Close()
		out = append(out, "Redis "+v)
	}
	_, err := fmt.Fprintln(w, strings.Join(out, ", "))
	return err
}

// kfakeCmd runs a 3-broker kfake cluster on loopback, prints its
// bootstrap addresses (comma separated) on one line and serves until
// SIGINT or SIGTERM.
func kfakeCmd(w io.Writer) error {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintln(w, strings.Join(c.ListenAddrs(), ","))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

const startMarker, endMarker = "<!-- bench:start -->", "<!-- bench:end -->"

// splice replaces what stands between the markers in doc with block.
func splice(doc, block string) (string, error) {
	i := strings.Index(doc, startMarker)
	j := strings.Index(doc, endMarker)
	if i < 0 || j < i || strings.Count(doc, startMarker) != 1 || strings.Count(doc, endMarker) != 1 {
		return "", errors.New("want exactly one " + startMarker + " followed by one " + endMarker)
	}
	return doc[:i+len(startMarker)] + "\n" + strings.TrimSpace(block) + "\n" + doc[j:], nil
}

func spliceCmd(args []string, r io.Reader) error {
	fs := flag.NewFlagSet("splice", flag.ContinueOnError)
	file := fs.String("file", "README.md", "file whose bench block to replace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	doc, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	block, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s, err := splice(string(doc), string(block))
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	return os.WriteFile(*file, []byte(s), 0o644)
}
