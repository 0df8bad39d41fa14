package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const sampleOutput = `goos: linux
pkg: github.com/busline/bus/kafka
BenchmarkPublishBatch100/busline-2         	   20000	     10000 ns/op	    100000 msgs/s	    1200 B/op	      10 allocs/op
BenchmarkPublishBatch100/busline-2         	   20000	     30000 ns/op	     33333 msgs/s	    1300 B/op	      11 allocs/op
BenchmarkPublishBatch100/busline-2         	   20000	     20000 ns/op	     50000 msgs/s	    1250 B/op	      12 allocs/op
BenchmarkGroupConsume/kafkago
    bench_test.go:99: some log line
BenchmarkGroupConsume/kafkago-2            	   20000	     15000 ns/op	     1.80 p50-ms	     8.2 p99-ms	     66666 msgs/s
BenchmarkSlowHandler/concurrency=1-2       	     100	   1000000 ns/op
PASS
pkg: github.com/busline/bus/mem
BenchmarkEndToEnd/concurrency=1-2          	 1000000	      1527 ns/op	    655023 msgs/s
ok  	github.com/busline/bus/mem	3.1s
`

func TestTable(t *testing.T) {
	pkgs, err := parse(strings.NewReader(sampleOutput), regexp.MustCompile(`PublishBatch|GroupConsume|EndToEnd`))
	require.NoError(t, err)
	var b bytes.Buffer
	writeTables(&b, pkgs)
	out := b.String()
	t.Log("\n" + out)
	require.Contains(t, out, "**github.com/busline/bus/kafka**")
	// Every unit any benchmark reported is a column, in first-seen order.
	require.Contains(t, out, "| benchmark | n | ns/op | msgs/s | B/op | allocs/op | p50-ms | p99-ms |")
	// Medians of three runs; the custom metric of another benchmark stays empty here.
	require.Contains(t, out, "| PublishBatch100/busline | 3 | 20,000 | 50,000 | 1,250 | 11 |  |  |")
	require.Contains(t, out, "| GroupConsume/kafkago | 1 | 15,000 | 66,666 |  |  | 1.8 | 8.2 |")
	require.NotContains(t, out, "SlowHandler") // not matched
	require.Contains(t, out, "| EndToEnd/concurrency=1 | 1 | 1,527 | 655,023 |")
}

func TestMedianEven(t *testing.T) {
	require.Equal(t, 2.5, median([]float64{4, 1, 2, 3}))
	require.Equal(t, "0.123", format(0.12345))
	require.Equal(t, "1,234,568", format(1234567.9))
}

func TestSplice(t *testing.T) {
	doc := "a\n<!-- bench:start -->\nold\n<!-- bench:end -->\nb\n"
	s, err := splice(doc, "new\n")
	require.NoError(t, err)
	require.Equal(t, "a\n<!-- bench:start -->\nnew\n<!-- bench:end -->\nb\n", s)
	_, err = splice("no markers", "x")
	require.Error(t, err)
	_, err = splice(doc+doc, "x")
	require.Error(t, err)
}
