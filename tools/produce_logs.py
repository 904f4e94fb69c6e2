#!/usr/bin/env python3
"""Produce synthetic log lines to Kafka with the Python confluent-kafka client (librdkafka 2.16).

Lines have the generator's format: "<serial> <ISO-8601 UTC time with ms> <LEVEL> <message>".
Deterministic for a seed. --bad-fraction mixes in malformed records (truncated, bad timestamp,
binary garbage, empty, invalid UTF-8) so the engine's dead-letter path is exercised.

  produce_logs.py --bootstrap B --topic T --count N [--partitions P] [--seed S] [--start-serial K]
                  [--bad-fraction F]
Prints {"produced": N, "bad": M}.
"""
import argparse
import json
import random
import sys
from datetime import datetime, timedelta, timezone

from confluent_kafka import Producer

LEVELS = ["INFO"] * 70 + ["DEBUG"] * 15 + ["WARN"] * 10 + ["ERROR"] * 5
WORDS = ("user session request cache disk login payment order queue worker timeout retry "
         "connection handshake shard replica leader commit index query latency").split()


def line(rng, serial, base):
    t = base + timedelta(milliseconds=serial * 7)
    ts = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    target = rng.randint(60, 120)
    words = []
    while len(" ".join(words)) < target:
        words.append(rng.choice(WORDS) + ("" if rng.random() < 0.7 else f"={rng.randint(0, 99999)}"))
    msg = " ".join(words)[:target]
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
    args = ap.parse_args()

    rng = random.Random(args.seed)
    base = datetime(2026, 11, 26, 0, 0, 0, tzinfo=timezone.utc)
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 20, "batch.num.messages": 10000, "queue.buffering.max.messages": 500000})
    nbad = 0
    for i in range(args.count):
        serial = args.start_serial + i
        value = line(rng, serial, base)
        if args.bad_fraction and rng.random() < args.bad_fraction:
            value = bad(rng, value)
            nbad += 1
        kwargs = {"value": value, "on_delivery": on_delivery}
        if args.partitions:
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
    print(json.dumps({"produced": args.count, "bad": nbad}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
