#!/usr/bin/env bash
# Times a shallow etl-audit of N objects (default 10,000) against moto_server, 3 runs.
#   bench/audit_bench.sh [N] [debug|release]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-10000}"
conf="${2:-release}"
work="$(mktemp -d)"
export TIDEMARK_STACK_DIR="$work/.stack" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
cd "$root"
swift build -c "$conf" --product etl-audit >/dev/null
swift build -c "$conf" --product etl-recover >/dev/null
bin="$(swift build -c "$conf" --show-bin-path)"
tools/stack up >/dev/null
trap 'tools/stack down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cat >"$work/t.toml" <<TOML
[kafka]
brokers = "$(cat "$work/.stack/kafka.bootstrap")"
topics = ["t"]
[sink]
url = "s3://aud/lake"
endpoint = "$(cat "$work/.stack/s3.endpoint")"
[staging]
dir = "$work/staging"
manifest = "$work/state/manifest.sqlite"
TOML
"$bin/etl-recover" --config "$work/t.toml" >/dev/null 2>&1 || true   # creates the manifest
python3 tools/kafka_tool.py produce --bootstrap "$(cat "$work/.stack/kafka.bootstrap")" --topic t --count 4 >/dev/null
python3 bench/audit_fixture.py "$(cat "$work/.stack/s3.endpoint")" "$work/state/manifest.sqlite" "$n"
for i in 1 2 3; do
    /usr/bin/time -f "run $i: %e s wall, %U s user, %M KiB max RSS" "$bin/etl-audit" --config "$work/t.toml" | tail -1
done
