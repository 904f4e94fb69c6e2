#!/usr/bin/env python3
"""Produce synthetic log lines to Kafka with the Python confluent-kafka client (librdkafka 2.16).

Lines have the generator's format: "<serial> <ISO-8601 UTC time with ms> <LEVEL> <message>".
Deterministic for a seed. --bad-fraction mixes in malformed records (truncated, bad timestamp,
binary garbage, empty, invalid UTF-8) so the engine's dead-letter path is exercised.

  produce_logs.py --bootstrap B --topic T --count N [--partitions P] [--seed S] [--start-serial K]
                  [--bad-fraction F] [--random-bytes N] [--pad N] [--compression C]
                  [--linger-ms MS] [--partition-major] [--huge-lines K] [--rate R] [--short-messages] [--dense]
Prints {"produced": N, "bad": M, "huge": K}.

--huge-lines K replaces K evenly spread records by 2 MiB lines (a valid-looking prefix, then
filler; compressible, so the dev broker's ~5 MiB log keeps them), which the engine must send to
the dead-letter store (input.max_line_bytes, default 1 MiB); they count as bad. --rate R spreads
the records over time (R records/s) so faults can be injected while data flows.
"""
import argparse
import base64
import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone

from confluent_kafka import Producer

LEVELS = ["INFO"] * 70 + ["DEBUG"] * 15 + ["WARN"] * 10 + ["ERROR"] * 5
WORDS = ("user session request cache disk login payment order queue worker timeout retry "
         "connection handshake shard replica leader commit index query latency").split()


BLOB = ""


EVENT_STEP_MS = 7
LATE_FRACTION = 0.0
LATE_MAX_S = 0.0


def line(rng, serial, base, random_bytes=0, short=False):
    t = base + timedelta(milliseconds=serial * EVENT_STEP_MS)
    if LATE_FRACTION and rng.random() < LATE_FRACTION:
        # A late record: its event time lies up to LATE_MAX_S before its neighbours'.
        t -= timedelta(seconds=rng.uniform(0, LATE_MAX_S))
    ts = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    target = rng.randint(10, 24) if short else rng.randint(60, 120)
    words = []
    while len(" ".join(words)) < target:
        words.append(rng.choice(WORDS) + ("" if rng.random() < 0.7 else f"={rng.randint(0, 99999)}"))
    msg = " ".join(words)[:target]
    if random_bytes:
        # Incompressible payload (base64 of random bytes), for tests that need large objects.
        msg += " blob=" + base64.b64encode(rng.randbytes(random_bytes * 3 // 4)).decode()
    if BLOB:
        msg += " pad=" + BLOB
    return f"{serial} {ts} {rng.choice(LEVELS)} {msg}".encode()


def bad(rng, good):
    kind = rng.randrange(5)
    if kind == 0:
        return good[: rng.randint(1, 12)]                       # truncated
    if kind == 1:
        return good.replace(b"T", b"X", 1)                      # bad timestamp
    if kind == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))  # binary garbage
    if kind == 3:
        return b""                                              # empty
    return good[:20] + b"\xc3\x28" + good[22:]                  # invalid UTF-8


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--partitions", type=int, default=0, help="round-robin over P partitions (else keyed by serial)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start-serial", type=int, default=0)
    ap.add_argument("--bad-fraction", type=float, default=0.0)
    ap.add_argument("--random-bytes", type=int, default=0, help="append ~N incompressible characters to each message")
    ap.add_argument("--pad", type=int, default=0,
                    help="append the same N-character string to every message (compresses away in Kafka, "
                         "not in uncompressed Parquet: large objects from a small broker log)")
    ap.add_argument("--compression", default="zstd",
                    help="producer compression.type (the dev broker keeps only ~5 MiB of stored bytes per partition)")
    ap.add_argument("--linger-ms", type=int, default=20, help="producer linger.ms (larger = larger message sets)")
    ap.add_argument("--partition-major", action="store_true",
                    help="with --partitions P: fill partition 0 with the first count/P records, then 1, ... "
                         "(each partition gets the producer's full rate, so message sets are large; the dev "
                         "broker answers a fetch with few message sets, so their size sets the consume rate)")
    ap.add_argument("--huge-lines", type=int, default=0, help="K records become 2 MiB lines (dead-lettered; counted as bad)")
    ap.add_argument("--rate", type=float, default=0, help="records per second (0 = as fast as possible)")
    ap.add_argument("--dense", action="store_true",
                    help="large producer batches at zstd level 12: the most records in the dev broker's ~5 MiB per partition")
    ap.add_argument("--short-messages", action="store_true",
                    help="10-24 character messages (more records fit the dev broker's ~5 MiB per partition)")
    ap.add_argument("--event-step-ms", type=int, default=7,
                    help="event time advances this much per serial (larger spans more hours)")
    ap.add_argument("--late-fraction", type=float, default=0.0,
                    help="fraction of records whose event time is late (out of order)")
    ap.add_argument("--late-max-s", type=float, default=0.0, help="how late a late record is, at most (seconds)")
    args = ap.parse_args()

    global BLOB, EVENT_STEP_MS, LATE_FRACTION, LATE_MAX_S
    EVENT_STEP_MS, LATE_FRACTION, LATE_MAX_S = args.event_step_ms, args.late_fraction, args.late_max_s
    rng = random.Random(args.seed)
    BLOB = "".join(random.Random(args.seed + 1).choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(args.pad))
    base = datetime(2026, 11, 26, 0, 0, 0, tzinfo=timezone.utc)
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(str(err))

    conf = {"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": args.linger_ms, "batch.num.messages": 10000, "queue.buffering.max.messages": 500000,
            "compression.type": args.compression}
    if args.huge_lines:
        conf["message.max.bytes"] = 8 << 20
    if args.dense:
        conf.update({"message.max.bytes": 8 << 20, "batch.size": 4 << 20, "batch.num.messages": 200000,
                     "linger.ms": 200, "compression.level": 12})
    p = Producer(conf)
    huge_at = set()
    if args.huge_lines:
        step = max(1, args.count // args.huge_lines)
        huge_at = {min(args.count - 1, step // 2 + k * step) for k in range(args.huge_lines)}
    nbad = nhuge = 0
    started = time.monotonic()
    # --rate: check the pace every 100 records at high rates, down to every record at 100/s and below.
    pace_every = max(1, min(100, int(args.rate // 100))) if args.rate else 100
    for i in range(args.count):
        serial = args.start_serial + i
        value = line(rng, serial, base, args.random_bytes, args.short_messages)
        if i in huge_at:
            value = value[:40] + b" " + (b"huge-line-filler " * ((2 << 20) // 17 + 1))[: (2 << 20) - 41]
            nbad += 1
            nhuge += 1
        elif args.bad_fraction and rng.random() < args.bad_fraction:
            value = bad(rng, value)
            nbad += 1
        if args.rate and i % pace_every == 0:
            ahead = i / args.rate - (time.monotonic() - started)
            if ahead > 0:
                p.poll(0)
                time.sleep(ahead)
        kwargs = {"value": value, "on_delivery": on_delivery}
        if args.partitions and args.partition_major:
            kwargs["partition"] = min(i * args.partitions // args.count, args.partitions - 1)
        elif args.partitions:
            kwargs["partition"] = i % args.partitions
        else:
            kwargs["key"] = str(serial).encode()
        while True:
            try:
                p.produce(args.topic, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(120)
    if left or errors:
        print(json.dumps({"error": errors[:5], "undelivered": left}), file=sys.stderr)
        return 1
    print(json.dumps({"produced": args.count, "bad": nbad, "huge": nhuge}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
