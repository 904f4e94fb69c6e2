#!/usr/bin/env python3
"""Check, with the Python confluent-kafka client (not Tidemark's code), that a topic written by
etl-produce holds every line of the given log files exactly once and in order.

  verify_produce.py --bootstrap B --topic T --expect N [--timeout S] [--settle S] FILE...

Reads the whole topic (earliest offsets, no group commits) until N records arrived and then
--settle seconds pass without another one (so extra records are seen too), or --timeout.
Each record must carry etl-produce's headers (tidemark.file, tidemark.offset, tidemark.end,
tidemark.line; tidemark.fileid from producers that set it). A file's fingerprint is the SHA-256
of its first min(1024, size) bytes, or of a shorter prefix (a file fingerprinted while short).
Several files may share a fingerprint (identical headers): records are grouped by tidemark.fileid (the producer's identity of one file) and each group is
matched to the file whose lines it equals, preferring a file no other group matched.
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
    """The file's possible fingerprints and its lines. etl-produce fingerprints a file over its
    first 1024 bytes, or over fewer when the file stayed shorter for a while (it may have grown
    since), so every prefix of 1..1024 bytes is a candidate."""
    data = open(path, "rb").read()
    fp = {hashlib.sha256(data[:k]).hexdigest() for k in range(1, min(1024, len(data)) + 1)}
    fp.add(hashlib.sha256(data[:1024]).hexdigest())
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

    files = []   # (path, fingerprint, lines)
    by_fp = defaultdict(list)
    for path in args.files:
        fp, lines = file_lines(path)
        for f in fp:
            by_fp[f].append(len(files))
        files.append((path, fp, lines))

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
    parsed = []
    for partition, kafka_offset, headers, value in records:
        try:
            fp = headers["tidemark.file"].decode()
            start = int(headers["tidemark.offset"])
            end = int(headers["tidemark.end"])
            number = int(headers["tidemark.line"])
        except (KeyError, ValueError):
            problems["no_headers"].append([partition, kafka_offset])
            continue
        group = headers["tidemark.fileid"].decode() if "tidemark.fileid" in headers else "fp:" + fp
        parsed.append((partition, kafka_offset, fp, start, end, number, value, group))

    # Which file each group of records came from: among the files with the records' fingerprint,
    # those whose lines all of the group's records equal (any of them when none does).
    groups = defaultdict(list)
    for r in parsed:
        groups[r[7]].append(r)
    owner, claimed = {}, set()
    candidates = {}
    for g, rs in groups.items():
        fps = {r[2] for r in rs}
        pool = [i for fp in fps for i in by_fp.get(fp, [])]
        fits = [i for i in set(pool) if all(files[i][2].get(r[3]) == (r[4], r[5], r[6]) for r in rs)]
        candidates[g] = fits or pool
    for g in sorted(candidates, key=lambda g: (len(candidates[g]), g)):
        pool = sorted(set(candidates[g]))
        if not pool:
            continue
        free = [i for i in pool if i not in claimed]
        owner[g] = (free or pool)[0]
        claimed.add(owner[g])

    seen = defaultdict(set)
    last_offset = {}
    for partition, kafka_offset, fp, start, end, number, value, group in parsed:
        if group not in owner or fp not in files[owner[group]][1]:
            problems["unknown_file"].append([partition, kafka_offset, fp[:12]])
            continue
        i = owner[group]
        path, _, lines = files[i]
        if start in seen[i]:
            problems["duplicate"].append([path, start])
        seen[i].add(start)
        expected = lines.get(start)
        if expected is None or expected[0] != end or expected[1] != number or expected[2] != value:
            problems["mismatch"].append([path, start, partition, kafka_offset])
        key = (partition, i)
        if key in last_offset and last_offset[key] >= start:
            problems["out_of_order"].append([path, start, partition, kafka_offset])
        last_offset[key] = start
    for i, (path, _, lines) in enumerate(files):
        missing = sorted(set(lines) - seen[i])
        if missing:
            problems["missing"].append([path, len(missing), missing[:5]])

    summary = {
        "ok": not problems and len(records) == args.expect,
        "records": len(records),
        "expected": args.expect,
        "files": {path: len(lines) for path, _, lines in files},
        "partitions": sorted({r[0] for r in records}),
        "problems": {k: v[:10] for k, v in problems.items()},
        "problem_counts": {k: len(v) for k, v in problems.items()},
    }
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
