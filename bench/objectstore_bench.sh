#!/usr/bin/env bash
# ObjectStore upload throughput: a 256 MiB file to moto_server and to a FileStore with
# 8/16/32 MiB parts and 1/4/8 parts in flight, next to `aws s3 cp` to the same server.
#
# Usage: bench/objectstore_bench.sh [S3_ENDPOINT]
#   S3_ENDPOINT defaults to the stack's (.stack/s3.endpoint or $TIDEMARK_STACK_DIR/s3.endpoint).
#   SIZE_MIB (default 256) and CONFIG (default release) can be overridden.
# moto_server keeps objects in memory and is single-process Python, so its numbers measure
# moto more than the network; they are for comparing configurations and clients.
set -euo pipefail
cd "$(dirname "$0")/.."
STACK_DIR="${TIDEMARK_STACK_DIR:-.stack}"
ENDPOINT="${1:-$(cat "$STACK_DIR/s3.endpoint")}"
SIZE_MIB="${SIZE_MIB:-256}"
CONFIG="${CONFIG:-release}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

swift build -c "$CONFIG" --product objectstore-bench >&2
BIN="$(swift build -c "$CONFIG" --show-bin-path)/objectstore-bench"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$WORK/data.bin"
BUCKET="bench-$(date +%s)"

echo "# ${SIZE_MIB} MiB file; endpoint ${ENDPOINT}; build ${CONFIG}"
for part in 8 16 32; do
  for inflight in 1 4 8; do
    "$BIN" --location "s3://$BUCKET/os" --endpoint "$ENDPOINT" --create-bucket \
      --file "$WORK/data.bin" --part-mib "$part" --inflight "$inflight"
  done
done
for part in 8 16 32; do
  for inflight in 1 4 8; do
    "$BIN" --location "file://$WORK/store" --file "$WORK/data.bin" --part-mib "$part" --inflight "$inflight"
  done
done
# awscli's defaults: 8 MiB parts, 10 concurrent requests.
start=$(date +%s.%N)
aws --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "$WORK/data.bin" "s3://$BUCKET/awscli/data.bin"
end=$(date +%s.%N)
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); b=$SIZE_MIB*1048576; print(f'aws s3 cp        part=  8MiB inflight=10 bytes={b} seconds={s:6.2f} MB/s={b/1e6/s:7.1f}')" "$start" "$end"
aws --endpoint-url "$ENDPOINT" s3 rm --only-show-errors "s3://$BUCKET/awscli/data.bin"
