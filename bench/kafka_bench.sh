#!/usr/bin/env bash
# Kafka consume benchmark: KafkaConsumer (kafka-bench, release build) beside kcat on the same topic.
#
#   bench/kafka_bench.sh [COUNT]        default COUNT=1000000 records of ~120 bytes
#
# Starts its own etl-devbroker (release build) with a 40-partition topic and stops it by PID on
# exit: the dev broker (librdkafka's mock cluster) keeps at most 5 MiB per partition and drops
# older records beyond that, so 1,000,000 records of ~120 bytes (~140 MB) need >= 32 partitions,
# and the mock does not implement CreateTopics, so the topic is declared at broker start.
# Prints one JSON line per tool (records/s and MB/s of values) and the ratio. Goal: kafka-bench >= kcat.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
count="${1:-1000000}"
topic="bench-$(date +%s)-$$"
broker_pid=""
tmp="$(mktemp -d)"
cleanup() {
    if [[ -n "$broker_pid" ]]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

partitions=40
swift build -c release --product kafka-bench >&2
swift build -c release --product etl-devbroker >&2
"$root/.build/release/etl-devbroker" --topic "$topic:$partitions" --bootstrap-file "$tmp/bootstrap" \
    >"$tmp/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do [[ -s "$tmp/bootstrap" ]] && break; sleep 0.1; done
bootstrap="$(cat "$tmp/bootstrap")"
echo "bench: broker $bootstrap, topic $topic, $count records" >&2

# ~120-byte values: a 112-character prefix, "-", and the record number.
prefix="$(printf 'x%.0s' $(seq 112))"
python3 tools/kafka_tool.py produce --bootstrap "$bootstrap" --topic "$topic" --count "$count" \
    --partitions "$partitions" --prefix "$prefix" >&2

ours="$("$root/.build/release/kafka-bench" --bootstrap "$bootstrap" --topic "$topic" --count "$count")"
echo "$ours"

# kcat as a simple (group-less) consumer from the beginning, exiting at the end of every partition.
# Timed run writes to /dev/null (kcat's best case); a second run counts what it read.
start=$(date +%s.%N)
kcat -b "$bootstrap" -C -t "$topic" -e -o beginning -q >/dev/null
end=$(date +%s.%N)
kcat -b "$bootstrap" -C -t "$topic" -e -o beginning -q >"$tmp/kcat.out"
python3 - "$start" "$end" "$tmp/kcat.out" "$ours" <<'PY'
import json, sys
start, end, path, ours = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
# kcat prints each value followed by a newline (values here contain none).
sizes = [len(line) - 1 for line in open(path, "rb")]
secs = end - start
kcat = {"tool": "kcat", "records": len(sizes), "bytes": sum(sizes), "seconds": round(secs, 3),
        "records_per_s": round(len(sizes) / secs), "mb_per_s": round(sum(sizes) / secs / 1e6, 1),
        "note": "process start to exit, output to /dev/null"}
print(json.dumps(kcat))
print(json.dumps({"ratio_records_per_s": round(ours["records_per_s"] / kcat["records_per_s"], 2),
                  "goal": "kafka-bench >= kcat"}))
PY
