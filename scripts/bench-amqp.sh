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
echo "Medians over the rounds; ratios are medians of per-round ratios to the"
echo "reference measured in the same round and process (end to end: raw, and"
echo "raw-same-envelope; concurrent publishers: busline/batch=100, and"
echo "raw/batch=100)."
echo
echo "| benchmark | rounds | msgs/s | p50 ms | p99 ms | rate ÷ ref | p99 ÷ ref p99 | rate ÷ ref2 | p99 ÷ ref2 p99 |"
echo "|---|---|---|---|---|---|---|---|---|"
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
function med(a, k,   i, j, t) {
	if (k == 0) return -1
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
function median(arr, name,   i, a, k) {
	k = 0
	for (i = 1; i <= n[name]; i++) if ((name, i) in arr) a[++k] = arr[name, i] + 0
	return med(a, k)
}
function ratio(arr, name, ref,   i, a, k) {
	k = 0
	if (ref == "" || !(ref in seen)) return -1
	for (i = 1; i <= n[name] && i <= n[ref]; i++)
		if ((name, i) in arr && (ref, i) in arr && arr[ref, i] > 0) a[++k] = arr[name, i] / arr[ref, i]
	return med(a, k)
}
function show(v, f) { return v < 0 ? "—" : sprintf(f, v) }
END {
	for (i = 1; i <= nb; i++) {
		b = order[i]; pre = ""; if (b ~ /^base:/) pre = "base:"
		ref = ""; ref2 = ""
		if (b ~ /EndToEnd\//) { ref = pre "EndToEnd/raw"; ref2 = pre "EndToEnd/raw-same-envelope" }
		if (b ~ /PublishConcurrent\//) { ref = pre "PublishConcurrent/busline/batch=100"; ref2 = pre "PublishConcurrent/raw/batch=100" }
		printf "| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", b, n[b], show(median(rate, b), "%.0f"),
			show(median(p50, b), "%.1f"), show(median(p99, b), "%.1f"),
			show(ratio(rate, b, ref), "%.2f"), show(ratio(p99, b, ref), "%.2f"),
			show(ratio(rate, b, ref2), "%.2f"), show(ratio(p99, b, ref2), "%.2f")
	}
}' "$out"
