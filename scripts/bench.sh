#!/usr/bin/env bash
# Runs the repository's benchmarks and writes their medians into README.md,
# between the <!-- bench:start --> and <!-- bench:end --> markers, with the
# machine, the brokers, the load, the date and the command that made them.
#
#   scripts/bench.sh                      # full settings; takes a while
#   BENCHTIME=2000x COUNT=1 N=2000 ROUNDS=1 LABEL="short run" scripts/bench.sh
#
# Two parts:
#   1. go test -bench of mem, amqp, kafka and redispubsub: each package's
#      test binary is built once, then COUNT rounds run the packages one
#      after another (so a drift in the machine's load spreads over all of
#      them), and scripts/benchtable prints the median of each benchmark
#      and of every metric it reports. Benchmarks are picked by PATTERN.
#   2. bench/watermill (its own module): busline next to Watermill on
#      RabbitMQ and kfake, batches of 100 and 16 concurrent single
#      publishers, COUNT rounds of WM_BENCHTIME; and next to rueidis on
#      Redis, RUEIDIS_BENCHTIME (WATERMILL=0 skips both).
#   3. bus bench -raw against RabbitMQ, Redis and Kafka (a kfake cluster
#      in its own process unless BUS_KAFKA_BROKERS names one): busline and
#      the raw client in one process, ROUNDS alternating rounds, medians.
#
# Settings (environment): BENCHTIME (brokers, default 20000x), MEM_BENCHTIME
# (default 2s), WM_BENCHTIME (bench/watermill, default 10000x),
# RUEIDIS_BENCHTIME (its Redis benchmark, default 100000x), COUNT (3), PATTERN, N (bus bench messages per run, 20000),
# ROUNDS (3), TIMEOUT (per invocation, 30m), AMQP_URL, REDIS_ADDR, LABEL
# (a note printed above the tables), README (the file to rewrite, default
# README.md; README=- prints the block instead).
#
# Needs RabbitMQ and Redis on loopback (scripts/test.sh starts them). Run
# it on a quiet machine: every number is only as good as the load allows,
# and the block records the load average before and after.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCHTIME=${BENCHTIME:-20000x}
MEM_BENCHTIME=${MEM_BENCHTIME:-2s}
COUNT=${COUNT:-3}
PATTERN=${PATTERN:-'PublishCoalesce|PublishBatch|Publish16Concurrent|PublishConcurrent|Publish1KiB|PublishParallel1KiB|EndToEnd|GroupConsume'}
N=${N:-20000}
ROUNDS=${ROUNDS:-3}
TIMEOUT=${TIMEOUT:-30m}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
REDIS_ADDR=${REDIS_ADDR:-127.0.0.1:6379}
README=${README:-README.md}
LABEL=${LABEL:-}
WM_BENCHTIME=${WM_BENCHTIME:-10000x}
WATERMILL=${WATERMILL:-1}
WM_PATTERN='(Rabbit|Kafka)(PublishBatch100|Publish16)$'
RUEIDIS_BENCHTIME=${RUEIDIS_BENCHTIME:-100000x}
command="BENCHTIME=$BENCHTIME MEM_BENCHTIME=$MEM_BENCHTIME WM_BENCHTIME=$WM_BENCHTIME RUEIDIS_BENCHTIME=$RUEIDIS_BENCHTIME COUNT=$COUNT N=$N ROUNDS=$ROUNDS scripts/bench.sh"

tmp=$(mktemp -d)
kfake_pid=
cleanup() {
	if [ -n "$kfake_pid" ]; then kill "$kfake_pid" 2>/dev/null || true; wait "$kfake_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
log() { printf '== %s\n' "$*" >&2; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "building (load average $load_before)"
go build -o "$tmp/bus" ./cmd/bus
go build -o "$tmp/benchtable" ./scripts/benchtable
pkgs="mem amqp kafka redispubsub"
for p in $pkgs; do go test -c -o "$tmp/$p.test" "./$p/"; done

for round in $(seq "$COUNT"); do
	for p in $pkgs; do
		bt=$BENCHTIME
		[ "$p" = mem ] && bt=$MEM_BENCHTIME
		log "round $round/$COUNT: go test -bench '$PATTERN' -benchtime $bt ./$p/"
		(cd "$p" && "$tmp/$p.test" -test.run '^$' -test.bench "$PATTERN" -test.benchtime "$bt" \
			-test.benchmem -test.count 1 -test.timeout "$TIMEOUT") | tee -a "$tmp/bench.txt" >&2
	done
done

touch "$tmp/watermill.txt"
if [ "$WATERMILL" = 1 ]; then
	(cd bench/watermill && go test -c -o "$tmp/watermill.test" .)
	for round in $(seq "$COUNT"); do
		log "round $round/$COUNT: bench/watermill -bench '$WM_PATTERN' -benchtime $WM_BENCHTIME"
		(cd bench/watermill && "$tmp/watermill.test" -test.run '^$' -test.bench "$WM_PATTERN" \
			-test.benchtime "$WM_BENCHTIME" -test.count 1 -test.timeout "$TIMEOUT") | tee -a "$tmp/watermill.txt" >&2
		log "round $round/$COUNT: bench/watermill -bench RedisPublishCoalesce -benchtime $RUEIDIS_BENCHTIME"
		(cd bench/watermill && "$tmp/watermill.test" -test.run '^$' -test.bench RedisPublishCoalesce \
			-test.benchtime "$RUEIDIS_BENCHTIME" -test.count 1 -test.timeout "$TIMEOUT") | tee -a "$tmp/watermill.txt" >&2
	done
fi

if [ -n "${BUS_KAFKA_BROKERS:-}" ]; then
	kafka_brokers=$BUS_KAFKA_BROKERS
	kafka_what="Kafka at $BUS_KAFKA_BROKERS"
else
	"$tmp/benchtable" kfake >"$tmp/kfake.addr" &
	kfake_pid=$!
	for _ in $(seq 100); do [ -s "$tmp/kfake.addr" ] && break; sleep 0.1; done
	[ -s "$tmp/kfake.addr" ] || { echo "kfake did not start" >&2; exit 1; }
	kafka_brokers=$(cat "$tmp/kfake.addr")
	kafka_what="Kafka: kfake $(go list -m -f '{{.Version}}' github.com/twmb/franz-go/pkg/kfake), 3 brokers, in its own process"
fi

# bus_bench NAME URL FLAGS...: one bus bench -raw run, as Markdown rows.
bus_bench() {
	local name=$1 url=$2
	shift 2
	log "bus bench -raw $* ($name)"
	"$tmp/bus" bench -url "$url" -raw -rounds "$ROUNDS" -n "$N" -size 1024 -progress 0 -timeout "$TIMEOUT" "$@" busline-bench \
		>"$tmp/one.txt"
	cat "$tmp/one.txt" >&2
	# The table's rows are separated by two or more spaces.
	awk -v name="$name" -v flags="$*" 'BEGIN { FS = "  +" }
		NR > 2 && NF >= 7 { printf "| %s | `%s` | %s | %s | %s | %s | %s | %s | %s |\n", name, flags, $1, $2, $3, $4, $5, $6, $7 }
	' "$tmp/one.txt" >>"$tmp/busbench.md"
}
kafka_url="kafka://$kafka_brokers/?create_topics=true&topic_partitions=4"
for b in "RabbitMQ|$AMQP_URL" "Redis|redis://$REDIS_ADDR/0" "Kafka|$kafka_url"; do
	name=${b%%|*} url=${b#*|}
	bus_bench "$name" "$url" -publishers 16 -batch 1 -concurrency 16
	bus_bench "$name" "$url" -publishers 1 -batch 100 -concurrency 16
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
mem=$(free -g | awk '/^Mem:/ { print $2 }')
brokers=$("$tmp/benchtable" versions -amqp "$AMQP_URL" -redis "$REDIS_ADDR")
{
	echo "_Generated by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M') UTC; rerun it rather than editing these numbers._"
	[ -n "$LABEL" ] && printf '\n**%s**\n' "$LABEL"
	echo
	echo "Machine: $cpu, $(nproc) CPUs, $mem GiB, Linux $(uname -r), $(go version | cut -d' ' -f3); $brokers on loopback;"
	echo "$kafka_what. Load average (1, 5, 15 min) $load_before before, $load_after after."
	echo
	echo "Command: \`$command\`"
	echo
	echo "**go test benchmarks**: medians of $COUNT round(s), packages alternating; benchtime $BENCHTIME (mem: $MEM_BENCHTIME)."
	echo "Units are Go's (ns/op, B/op, allocs/op per benchmark operation) and each benchmark's own metrics."
	echo
	"$tmp/benchtable" table -match "$PATTERN" <"$tmp/bench.txt"
	if [ "$WATERMILL" = 1 ]; then
		echo "**Next to Watermill** (bench/watermill, its method in its README): medians of $COUNT round(s),"
		echo "benchtime $WM_BENCHTIME; RabbitMQ on loopback, Kafka on a kfake cluster inside the test binary."
		echo
		"$tmp/benchtable" table -match "(Rabbit|Kafka)(PublishBatch100|Publish16)/" <"$tmp/watermill.txt"
		echo "**Next to rueidis** (bench/watermill \`BenchmarkRedisPublishCoalesce\`: Watermill has no Redis pub/sub"
		echo "adapter; rueidis's auto-pipelining is the reference for coalescing): per client, PUBLISH in batches"
		echo "of 100 and from 16 concurrent single callers, alternating in one process; medians of $COUNT round(s),"
		echo "benchtime $RUEIDIS_BENCHTIME."
		echo
		"$tmp/benchtable" table -match "RedisPublishCoalesce/" <"$tmp/watermill.txt"
	fi
	echo "**bus bench -raw**: busline and the raw client in one process on the same broker, $ROUNDS alternating"
	echo "round(s) of $N 1 KiB messages, medians; the busline/raw row divides them (above 1: busline faster"
	echo "for msgs/s, slower or costlier for latency and allocations). The raw client sends the bare body,"
	echo "so the ratio includes the cost of busline's envelope; allocations count the whole process,"
	echo "publisher and subscriber. \`bus bench -h\` says what each raw client does."
	echo
	echo "| broker | flags | side | publish msgs/s | end-to-end msgs/s | p50 | p99 | allocs/msg | B/msg |"
	echo "|---|---|---|---|---|---|---|---|---|"
	cat "$tmp/busbench.md"
} >"$tmp/block.md"

if [ "$README" = - ]; then
	cat "$tmp/block.md"
else
	"$tmp/benchtable" splice -file "$README" <"$tmp/block.md"
	log "rewrote the bench block of $README"
fi
