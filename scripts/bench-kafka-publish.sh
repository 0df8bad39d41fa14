#!/usr/bin/env bash
# Runs the Kafka adapter's BenchmarkPublishCoalesce (kafka/bench_test.go:
# Publish with batches of 100 and 16 concurrent single-message publishers,
# side by side on one publisher in one process) and, next to it,
# BenchmarkPublishCoalesceKgo (the same with franz-go's kgo client, the
# reference for what the brokers leave to any client) COUNT times, and
# prints the median of every metric as a Markdown table, a column per
# benchmark. With BASE=<commit> (one that has the benchmark), that
# commit's build runs busline's benchmark too, alternating with the
# working tree's round by round, so that a drift in machine load spreads
# over both. Without BUS_KAFKA_BROKERS the brokers are kfake, in process.
#   scripts/bench-kafka-publish.sh                    # COUNT=5, N=40000
#   BASE=688b85a COUNT=5 scripts/bench-kafka-publish.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
n=${N:-40000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/tree.test" ./kafka/
variants=(tree)
if [ -n "${BASE:-}" ]; then
	mkdir "$tmp/base"
	git archive "$BASE" | tar -x -C "$tmp/base"
	(cd "$tmp/base" && go test -c -o "$tmp/base.test" ./kafka/)
	variants=(base tree)
fi
# bench_of VARIANT: the benchmarks it runs; the base has no kgo reference.
bench_of() { if [ "$1" = base ]; then echo '^BenchmarkPublishCoalesce$'; else echo '^BenchmarkPublishCoalesce(Kgo)?$'; fi; }
echo "start: $(uptime)" >&2
for _ in $(seq "$count"); do
	for v in "${variants[@]}"; do
		(cd kafka && "$tmp/$v.test" -test.run '^$' -test.bench "$(bench_of "$v")" \
			-test.benchtime "${n}x" -test.timeout 600s) |
			grep '^Benchmark' | sed "s/^/$v /" | tee -a "$tmp/out" >&2
	done
done
echo "end: $(uptime)" >&2
echo
awk '
{
	col = $2; sub(/^BenchmarkPublishCoalesce/, "", col); sub(/-[0-9]+$/, "", col)
	col = col == "Kgo" ? "kgo" : ($1 == "base" ? "busline (base)" : "busline")
	if (!(col in cols)) { cols[col] = 1; v[++nv] = col }
	for (i = 4; i < NF; i += 2) {
		if ($(i+1) == "ns/op" || $(i+1) == "MB/s") continue
		key = col SUBSEP $(i+1)
		vals[key, ++cnt[key]] = $i
		if (!($(i+1) in seen)) { seen[$(i+1)] = 1; order[++nm] = $(i+1) }
	}
}
function num(x) { return x >= 100 ? sprintf("%.0f", x) : sprintf("%.3g", x) }
function median(key,    k, m, j, t, a) {
	m = cnt[key]
	for (k = 1; k <= m; k++) a[k] = vals[key, k] + 0
	for (k = 2; k <= m; k++) for (j = k; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return (m % 2) ? a[(m+1)/2] : (a[m/2] + a[m/2+1]) / 2
}
END {
	head = "| metric (median of " cnt[v[1] SUBSEP order[1]] ") |"; sep = "|---|"
	for (k = 1; k <= nv; k++) { head = head " " v[k] " |"; sep = sep "---|" }
	print head; print sep
	for (m = 1; m <= nm; m++) {
		row = "| " order[m] " |"
		for (k = 1; k <= nv; k++) row = row " " ((v[k] SUBSEP order[m]) in cnt ? num(median(v[k] SUBSEP order[m])) : "—") " |"
		print row
	}
}' "$tmp/out"
