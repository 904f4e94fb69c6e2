#!/usr/bin/env python3
"""The peer for `make bench`: what a user would otherwise write in Python.

confluent-kafka consumer (manual commits) -> parse each log line into the engine's columns ->
pyarrow Parquet (ZSTD level 3) in memory -> boto3 multipart upload -> commit the batch's end + 1.
One batch per partition at a time, cut at --batch-records (the engine's batch.max_records).
At-least-once: a crash between upload and commit re-uploads the batch (under the same key).

  peer_pipeline.py --bootstrap B --topic T --group G --endpoint URL --bucket BK --prefix P
                   --expect N [--batch-records 100000]

Prints one JSON line: records, bytes, objects, seconds from the first record consumed to the
last offset committed ("steady"), and from process start to that commit ("wall").
"""
import argparse
import io
import json
import time

T_START = time.perf_counter()

import boto3  # noqa: E402  (timed: the import is part of the peer's start-up)
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from confluent_kafka import Consumer, KafkaError, TopicPartition  # noqa: E402


def to_table(topic, partition, msgs):
    """msgs: list of (value bytes, offset, kafka timestamp ms). Vectorised where pyarrow allows."""
    ingest = time.time_ns() // 1000
    serials, times, levels, texts = [], [], [], []
    for value, _, _ in msgs:
        parts = value.decode("utf-8", "replace").split(" ", 3)
        serials.append(int(parts[0]))
        times.append(parts[1])
        levels.append(parts[2])
        texts.append(parts[3] if len(parts) > 3 else "")
    n = len(msgs)
    return pa.table({
        "serial": pa.array(serials, pa.int64()),
        "event_time": pc.cast(pa.array(times, pa.string()), pa.timestamp("us", tz="UTC")),
        "level": pa.array(levels, pa.string()),
        "message": pa.array(texts, pa.string()),
        "attributes": pa.nulls(n, pa.string()),
        "ingest_time": pa.array([ingest] * n, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "kafka_topic": pa.array([topic] * n, pa.string()),
        "kafka_partition": pa.array([partition] * n, pa.int32()),
        "kafka_offset": pa.array([m[1] for m in msgs], pa.int64()),
        "kafka_timestamp": pa.array([m[2] * 1000 for m in msgs], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    })


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--batch-records", type=int, default=100_000)
    args = ap.parse_args()

    s3 = boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1")
    transfer = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=16 << 20, max_concurrency=4)
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([args.topic])
    buffers = {}
    consumed = nbytes = objects = 0
    first = last_commit = None

    def flush(partition):
        nonlocal objects, last_commit
        msgs = buffers.pop(partition, [])
        if not msgs:
            return
        out = io.BytesIO()
        pq.write_table(to_table(args.topic, partition, msgs), out, compression="zstd", compression_level=3)
        out.seek(0)
        key = f"{args.prefix}/topic={args.topic}/partition={partition}/{args.topic}+{partition}+{msgs[0][1]:020d}.parquet"
        s3.upload_fileobj(out, args.bucket, key, Config=transfer)
        consumer.commit(offsets=[TopicPartition(args.topic, partition, msgs[-1][1] + 1)], asynchronous=False)
        objects += 1
        last_commit = time.perf_counter()

    while consumed < args.expect:
        for m in consumer.consume(num_messages=10_000, timeout=0.5):
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    raise SystemExit(f"peer: consume error: {m.error()}")
                continue
            if first is None:
                first = time.perf_counter()
            value = m.value() or b""
            buffers.setdefault(m.partition(), []).append((value, m.offset(), m.timestamp()[1]))
            consumed += 1
            nbytes += len(value)
            if len(buffers[m.partition()]) >= args.batch_records:
                flush(m.partition())
    for p in list(buffers):
        flush(p)
    consumer.close()
    steady = last_commit - first
    wall = last_commit - T_START
    print(json.dumps({"tool": "peer", "records": consumed, "bytes": nbytes, "objects": objects,
                      "steady_seconds": round(steady, 3), "wall_seconds": round(wall, 3),
                      "records_per_s": round(consumed / steady), "wall_records_per_s": round(consumed / wall),
                      "mb_per_s": round(nbytes / steady / 1e6, 1)}))


if __name__ == "__main__":
    main()
