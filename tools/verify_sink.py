#!/usr/bin/env python3
"""Independent exactly-once check of a Tidemark sink, using only pyarrow, DuckDB, boto3 and the
Python Kafka client (none of them is Tidemark code).

It reads the topic from the beginning with confluent-kafka (the truth), reads every Parquet
object under the sink with pyarrow (and counts rows again with DuckDB), reads every dead-letter
JSON-lines object, and checks:
  - every (partition, offset) of the topic appears exactly once across Parquet rows and
    dead-letter records (no loss, no duplicate);
  - each Parquet row's message, serial, level and event time match the Kafka record's bytes;
  - each dead-letter record's raw bytes equal the Kafka record's bytes.

  verify_sink.py --bootstrap B --topic T --sink file:///dir | s3://bucket/prefix [--endpoint URL]
                 [--expect N] [--timeout S] [--end-at-eof] [--exclude-serials A-B[,C-D...]]
Prints a JSON summary; exit 0 when exactly once, 1 otherwise.

The truth is the set of (partition, offset) a read_committed consumer (librdkafka's default,
stated explicitly) receives: records only. Offsets need not be dense: commit/abort markers of
transactional producers occupy offsets that hold no record, and must not be in the sink.
--expect N is the number of such records. By default a partition is read to the high watermark
of a ListOffsets query; --end-at-eof reads each partition until the consumer reports
end-of-partition instead (the Fetch answer's high watermark), for brokers whose ListOffsets is
wrong (Tansu, docs/kafka.md). --exclude-serials names serial ranges (e.g. an aborted
transaction's) that must not appear in any Parquet row.
"""
import argparse
import base64
import io
import json
import os
import sys
import time
from datetime import datetime, timezone

import duckdb
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaError, TopicPartition


def read_topic(bootstrap, topic, expect, timeout, end_at_eof=False):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"verify-{os.getpid()}-{time.time()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": True,
                  "isolation.level": "read_committed", "fetch.queue.backoff.ms": 10})
    md = c.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions.keys())
    highs = {}
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        highs[p] = hi
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = {}
    deadline = time.time() + timeout
    done = {p for p in parts if highs[p] == 0 and not end_at_eof}
    while len(done) < len(parts) and time.time() < deadline:
        for m in c.consume(num_messages=5000, timeout=0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if end_at_eof or m.offset() >= highs[m.partition()]:
                        done.add(m.partition())
                    continue
                raise RuntimeError(str(m.error()))
            out[(m.partition(), m.offset())] = (m.value() or b"", m.timestamp()[1])
            if not end_at_eof and m.offset() + 1 >= highs[m.partition()]:
                done.add(m.partition())
    c.close()
    return out


def list_sink(sink, endpoint):
    """Yields (key, bytes) for every object under the sink."""
    if sink.startswith("file://"):
        root = sink[len("file://"):]
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for f in filenames:
                if f.startswith("."):
                    continue
                full = os.path.join(dirpath, f)
                with open(full, "rb") as fh:
                    yield os.path.relpath(full, root), fh.read()
    else:
        import boto3
        rest = sink[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        token = None
        while True:
            kw = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kw["ContinuationToken"] = token
            page = s3.list_objects_v2(**kw)
            for o in page.get("Contents", []):
                yield o["Key"], s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            if not page.get("IsTruncated"):
                break
            token = page["NextContinuationToken"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--sink", required=True)
    ap.add_argument("--endpoint")
    ap.add_argument("--expect", type=int)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--end-at-eof", action="store_true",
                    help="read each partition until end-of-partition, not to a ListOffsets watermark")
    ap.add_argument("--exclude-serials", default="",
                    help="serial ranges A-B[,C-D...] that no Parquet row may hold (aborted transactions)")
    args = ap.parse_args()
    excluded = [tuple(int(x) for x in r.split("-")) for r in args.exclude_serials.split(",") if r.strip()]

    truth = read_topic(args.bootstrap, args.topic, args.expect, args.timeout, args.end_at_eof)
    seen = {}
    problems = []
    parquet_files = rejected_files = rows = rejected = 0
    duck = duckdb.connect()
    for key, data in list_sink(args.sink, args.endpoint):
        if key.endswith(".parquet"):
            parquet_files += 1
            table = pq.read_table(io.BytesIO(data))
            d = table.to_pydict()
            n = table.num_rows
            rows += n
            # A second, independent reader must agree on the row count and offsets.
            tmp = f"/tmp/verify-{os.getpid()}.parquet"
            with open(tmp, "wb") as fh:
                fh.write(data)
            dn, dmin, dmax = duck.execute(f"SELECT count(*), min(kafka_offset), max(kafka_offset) FROM read_parquet('{tmp}')").fetchone()
            os.unlink(tmp)
            if dn != n or (n and (dmin != min(d["kafka_offset"]) or dmax != max(d["kafka_offset"]))):
                problems.append(f"{key}: DuckDB sees {dn} rows, pyarrow {n}")
            for i in range(n):
                k = (d["kafka_partition"][i], d["kafka_offset"][i])
                if d["kafka_topic"][i] != args.topic:
                    continue
                seen[k] = seen.get(k, 0) + 1
                if any(a <= d["serial"][i] <= b for a, b in excluded):
                    problems.append(f"{key}: row {k} holds serial {d['serial'][i]} of an excluded (aborted) range")
                raw = truth.get(k)
                if raw is None:
                    problems.append(f"{key}: row for {k} not in the topic")
                    continue
                parts = raw[0].decode("utf-8").rstrip("\n").split(" ", 3)
                msg = parts[3] if len(parts) > 3 else ""
                ev = d["event_time"][i]
                ts = datetime.strptime(parts[1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
                if (str(d["serial"][i]) != parts[0] or d["level"][i] != parts[2] or d["message"][i] != msg
                        or ev != ts):
                    problems.append(f"{key}: row {k} differs from Kafka record {raw[0][:80]!r}")
        elif key.endswith(".jsonl"):
            rejected_files += 1
            for ln in data.decode().splitlines():
                r = json.loads(ln)
                if r["topic"] != args.topic:
                    continue
                k = (r["partition"], r["offset"])
                rejected += 1
                seen[k] = seen.get(k, 0) + 1
                raw = truth.get(k)
                if raw is None or base64.b64decode(r["raw_base64"]) != raw[0]:
                    problems.append(f"{key}: dead-letter record {k} bytes differ from Kafka")
                if not r.get("reason"):
                    problems.append(f"{key}: dead-letter record {k} has no reason")
    dups = {k: n for k, n in seen.items() if n > 1}
    # Offsets between a partition's first and last record that hold no record (transaction markers).
    span = {}
    for p, o in truth:
        lo, hi, n = span.get(p, (o, o, 0))
        span[p] = (min(lo, o), max(hi, o), n + 1)
    gaps = sum(hi - lo + 1 - n for lo, hi, n in span.values())
    missing = [k for k in truth if k not in seen]
    summary = {"topic_records": len(truth), "parquet_objects": parquet_files, "rows": rows,
               "rejected_objects": rejected_files, "rejected": rejected, "duplicates": len(dups),
               "missing": len(missing), "problems": len(problems), "offset_gaps": gaps,
               "examples": {"duplicates": [list(k) for k in list(dups)[:5]], "missing": [list(k) for k in missing[:5]],
                            "problems": problems[:5]}}
    if args.expect is not None and len(truth) != args.expect:
        summary["problems"] += 1
        summary["examples"]["problems"].append(f"topic holds {len(truth)} records, expected {args.expect}")
    print(json.dumps(summary))
    return 0 if not dups and not missing and summary["problems"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
