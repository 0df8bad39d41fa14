#!/usr/bin/env bash
# Runs otelbus's benchmarks (needs Redis on 127.0.0.1:6379) and prints the
# medians of COUNT rounds as the Markdown table of otelbus/README.md. The
# rounds alternate the benchmarks, so that a drift in machine load spreads
# over every variant instead of one.
#   scripts/bench-otelbus.sh            # COUNT=5 by default
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -c -o "$out.test" ./otelbus/
trap 'rm -f "$out" "$out.test"' EXIT
for _ in $(seq "$count"); do
	(cd otelbus &&
		"$out.test" -test.run '^$' -test.bench 'Middleware|MemEndToEnd|SDKSpanReference' -test.benchtime 1s &&
		"$out.test" -test.run '^$' -test.bench 'RedisPublish' -test.benchtime 5000x) | tee -a "$out" >&2
done
echo
echo "| benchmark | none | off | global | metrics | sdk |"
echo "|---|---|---|---|---|---|"
awk '
/^BenchmarkRedisPublish/ {
	for (i = 3; i < NF; i++) if ($(i+1) ~ /-ns\/msg$/) {
		v = $(i+1); sub(/-ns\/msg$/, "", v); key = "RedisPublish" SUBSEP v
		n[key]++; ns[key, n[key]] = $i; al[key] = "-"
	}
	if (!("RedisPublish" in seen)) { seen["RedisPublish"] = 1; order[++nb] = "RedisPublish" }
	next
}
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	split(name, p, "/"); b = p[1]; sub(/^Benchmark/, "", b); v = p[2]
	key = b SUBSEP v
	n[key]++; ns[key, n[key]] = $3; al[key] = $7
	if (!(b in seen)) { seen[b] = 1; order[++nb] = b }
}
function median(key,   i, j, t, a, k) {
	k = n[key]
	for (i = 1; i <= k; i++) a[i] = ns[key, i] + 0
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return a[int((k + 1) / 2)]
}
END {
	for (i = 1; i <= nb; i++) {
		b = order[i]; line = "| " b
		if (n[b SUBSEP ""] > 0) { print "| " b " | " median(b SUBSEP "") " ns, " al[b SUBSEP ""] " allocs | | | | |"; continue }
		split("none off global metrics sdk", vs, " ")
		for (j = 1; j <= 5; j++) {
			key = b SUBSEP vs[j]
			if (al[key] == "-") line = line sprintf(" | %s ns", median(key))
			else line = line sprintf(" | %s ns, %s allocs", median(key), al[key])
		}
		print line " |"
	}
}' "$out"
