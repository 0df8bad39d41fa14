#!/usr/bin/env bash
# Runs the amqp adapter's side-by-side benchmarks (needs RabbitMQ on
# 127.0.0.1:5672) and prints, per variant, the medians of ROUNDS rounds of
# msgs/s, p50 and p99 latency. One process runs every round, and each round
# runs every variant once, in turn (BENCH_ROUNDS, see amqp/bench_test.go),
# so that a drift in machine load spreads over all of them.
# With BASE=<commit>, the library as it was at that commit, built with the
# current benchmarks, runs too: each round runs the two test binaries in
# turn, and the base's variants are reported as "base:<variant>".
#   scripts/bench-amqp.sh                  # ROUNDS=3, N=20000, BENCH='EndToEnd|PublishConcurrent'
#   BASE=main ROUNDS=5 scripts/bench-amqp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
n=${N:-20000}
bench=${BENCH:-EndToEnd|PublishConcurrent}
out=$(mktemp)
tmp=$(mktemp -d)
trap 'rm -rf "$out" "$tmp"' EXIT
go test -c -o "$tmp/head.test" ./amqp/
if [ -n "${BASE:-}" ]; then
	git archive "$BASE" | tar -x -C "$tmp" --one-top-level=base
	cp amqp/bench_test.go "$tmp/base/amqp/"
	(cd "$tmp/base" && go test -c -o "$tmp/base.test" ./amqp/)
fi
run() { # run BINARY ROUNDS
	(cd amqp && BENCH_ROUNDS=$2 "$1" -test.run '^$' -test.bench "$bench" \
		-test.benchtime "${n}x" -test.timeout 30m)
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ -n "${BASE:-}" ]; then
	for _ in $(seq "$rounds"); do
		run "$tmp/base.test" 1 | sed 's/^Benchmark/Benchmarkbase:/' | tee -a "$out" >&2
		run "$tmp/head.test" 1 | tee -a "$out" >&2
	done
else
	run "$tmp/head.test" "$rounds" | tee "$out" >&2
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo
echo "| benchmark | rounds | msgs/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|"
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); sub(/#[0-9]+/, "", name); sub(/^Benchmark/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++nb] = name }
	k = ++n[name]
	for (i = 3; i < NF; i++) {
		if ($(i+1) == "msgs/s") rate[name, k] = $i
		if ($(i+1) == "p50_ms") p50[name, k] = $i
		if ($(i+1) == "p99_ms") p99[name, k] = $i
	}
}
function median(arr, name, k,   i, j, t, a) {
	if ((name, 1) in arr == 0) return "—"
	for (i = 1; i <= k; i++) a[i] = arr[name, i] + 0
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return a[int((k + 1) / 2)]
}
END {
	for (i = 1; i <= nb; i++) {
		b = order[i]
		printf "| %s | %d | %.0f | %s | %s |\n", b, n[b], median(rate, b, n[b]), median(p50, b, n[b]), median(p99, b, n[b])
	}
}' "$out"
