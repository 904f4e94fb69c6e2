#!/usr/bin/env python3
"""Check, with the Python confluent-kafka client (not Tidemark's code), that a topic written by
etl-produce holds every line of the given log files exactly once and in order.

  verify_produce.py --bootstrap B --topic T --expect N [--timeout S] [--settle S] FILE...

Reads the whole topic (earliest offsets, no group commits) until N records arrived and then
--settle seconds pass without another one (so extra records are seen too), or --timeout.
Each record must carry etl-produce's headers (tidemark.file, tidemark.offset, tidemark.end,
tidemark.line). A file's fingerprint is the SHA-256 of its first min(1024, size) bytes.
Checks, per file: every line (newline-terminated, or the unterminated last one) is present
exactly once; the record's value equals the line's bytes without the newline; its line number
is right; within each partition the file's lines appear in increasing offset order.
Prints a JSON summary; exit status 0 when everything holds, 1 otherwise.
"""
import argparse
import hashlib
import json
import sys
import time
import uuid
from collections import defaultdict

from confluent_kafka import Consumer, KafkaError


def file_lines(path):
    data = open(path, "rb").read()
    fp = hashlib.sha256(data[:1024]).hexdigest()
    lines = {}
    start, number = 0, 0
    while start < len(data):
        nl = data.find(b"\n", start)
        end = len(data) if nl < 0 else nl + 1
        number += 1
        lines[start] = (end, number, data[start:nl if nl >= 0 else len(data)])
        start = end
    return fp, lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--settle", type=float, default=2)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    files = {}
    for path in args.files:
        fp, lines = file_lines(path)
        files[fp] = (path, lines)

    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "verify-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([args.topic])
    records = []
    deadline = time.time() + args.timeout
    last_arrival = time.time()
    try:
        while time.time() < deadline:
            if len(records) >= args.expect and time.time() - last_arrival >= args.settle:
                break
            for m in c.consume(num_messages=5000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    print(json.dumps({"error": str(m.error())}), file=sys.stderr)
                    return 1
                records.append((m.partition(), m.offset(), dict(m.headers() or []), m.value() or b""))
                last_arrival = time.time()
    finally:
        c.close()

    problems = defaultdict(list)
    seen = defaultdict(set)
    last_offset = {}
    records.sort(key=lambda r: (r[0], r[1]))
    for partition, kafka_offset, headers, value in records:
        try:
            fp = headers["tidemark.file"].decode()
            start = int(headers["tidemark.offset"])
            end = int(headers["tidemark.end"])
            number = int(headers["tidemark.line"])
        except (KeyError, ValueError):
            problems["no_headers"].append([partition, kafka_offset])
            continue
        if fp not in files:
            problems["unknown_file"].append([partition, kafka_offset, fp[:12]])
            continue
        path, lines = files[fp]
        if start in seen[fp]:
            problems["duplicate"].append([path, start])
        seen[fp].add(start)
        expected = lines.get(start)
        if expected is None or expected[0] != end or expected[1] != number or expected[2] != value:
            problems["mismatch"].append([path, start, partition, kafka_offset])
        key = (partition, fp)
        if key in last_offset and last_offset[key] >= start:
            problems["out_of_order"].append([path, start, partition, kafka_offset])
        last_offset[key] = start
    for fp, (path, lines) in files.items():
        missing = sorted(set(lines) - seen[fp])
        if missing:
            problems["missing"].append([path, len(missing), missing[:5]])

    summary = {
        "ok": not problems and len(records) == args.expect,
        "records": len(records),
        "expected": args.expect,
        "files": {path: len(lines) for path, lines in files.values()},
        "partitions": sorted({r[0] for r in records}),
        "problems": {k: v[:10] for k, v in problems.items()},
        "problem_counts": {k: len(v) for k, v in problems.items()},
    }
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
