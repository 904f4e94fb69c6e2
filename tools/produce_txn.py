#!/usr/bin/env python3
"""Produce log lines (produce_logs.py's format: "<serial> <time> <LEVEL> <message>") in Kafka
transactions with the Python confluent-kafka client (librdkafka 2.16), aborting some of them.

Each transaction writes --per-txn records round-robin over --partitions partitions, then commits
(or aborts, for the transaction numbers in --abort, counted from 0). Every commit/abort leaves a
control record (a marker) in each partition the transaction was registered in, which occupies an
offset: the topic's record offsets are not dense. Serials run on across all transactions, aborted
ones included, so a record's serial says which transaction wrote it.

--abort-mode says what an aborted transaction leaves in the log:
  unsent   (default) it is aborted before its records leave the producer (linger.ms is 1 s and
           abort_transaction purges the queue): the broker gets its partition registrations and
           writes abort markers, but none of its records.
  flushed  its records are flushed to the broker first, then it is aborted: a read_committed
           consumer must skip them. Tansu 0.6 does not (its Fetch answer never lists aborted
           transactions, so librdkafka delivers them): use this only against real Kafka.

  produce_txn.py --bootstrap B --topic T [--transactions 21] [--per-txn 500] [--partitions 2]
                 [--abort 7] [--seed S] [--bad-fraction F]
Prints {"committed": N, "aborted": M, "bad": K, "aborted_serials": [[first, last], ...],
"purged_unsent": U, "purged_in_flight": F, ...}; "bad" counts malformed records in committed
transactions only; F > 0 means some aborted records may have reached the log.
"""
import argparse
import json
import random
import sys
from datetime import datetime, timezone

from confluent_kafka import KafkaError, Producer

import produce_logs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--transactions", type=int, default=21)
    ap.add_argument("--per-txn", type=int, default=500)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--abort", default="7", help="comma-separated transaction numbers to abort (from 0)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bad-fraction", type=float, default=0.0)
    ap.add_argument("--abort-mode", choices=["unsent", "flushed"], default="unsent")
    ap.add_argument("--transactional-id", default=None)
    args = ap.parse_args()
    aborts = {int(x) for x in args.abort.split(",") if x.strip()}

    rng = random.Random(args.seed)
    base = datetime(2026, 11, 26, 0, 0, 0, tzinfo=timezone.utc)
    errors = []
    purged = {"queue": 0, "inflight": 0}

    def on_delivery(err, _msg):
        if err is None:
            return
        if err.code() == KafkaError._PURGE_QUEUE:          # an aborted transaction's unsent record
            purged["queue"] += 1
        elif err.code() == KafkaError._PURGE_INFLIGHT:     # ... already sent: it may be in the log
            purged["inflight"] += 1
        else:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": True,
                  "transactional.id": args.transactional_id or f"tidemark-txn-{args.topic}-{args.seed}",
                  # commit_transaction() flushes at once whatever linger.ms says; an aborted
                  # transaction's records wait for linger.ms, so "unsent" aborts purge them.
                  "linger.ms": 1000 if args.abort_mode == "unsent" else 5, "compression.type": "zstd"})
    p.init_transactions(30)
    serial = committed = aborted = nbad = 0
    aborted_serials = []
    for t in range(args.transactions):
        p.begin_transaction()
        first = serial
        tbad = 0
        for i in range(args.per_txn):
            value = produce_logs.line(rng, serial, base)
            if args.bad_fraction and rng.random() < args.bad_fraction:
                value = produce_logs.bad(rng, value)
                tbad += 1
            while True:
                try:
                    p.produce(args.topic, value=value, partition=i % args.partitions, on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            serial += 1
        if t in aborts:
            if args.abort_mode == "flushed":
                p.flush(60)
            p.abort_transaction(60)
            aborted += args.per_txn
            aborted_serials.append([first, serial - 1])
        else:
            p.commit_transaction(60)   # flushes this transaction's records first
            committed += args.per_txn
            nbad += tbad
    if errors:
        print(json.dumps({"error": errors[:5]}), file=sys.stderr)
        return 1
    print(json.dumps({"committed": committed, "abort_mode": args.abort_mode, "aborted": aborted, "bad": nbad,
                      "transactions": args.transactions, "aborted_transactions": sorted(aborts), "aborted_serials": aborted_serials,
                      "purged_unsent": purged["queue"], "purged_in_flight": purged["inflight"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
