#!/usr/bin/env python3
"""`etl-audit --fleet` over many objects in moto (not a test).

Brings up its own stack (in a temporary directory), writes --objects small `.parquet` objects
with the tidemark metadata an engine writes (boto3, --threads threads: one chain of 100-offset
objects per partition over --partitions partitions), commits the group's offsets at each
chain's end + 1, then times `etl-audit --fleet --json` (release) --runs times per --concurrency
value: listing the prefix + one HEAD per object. Prints the median, objects/s and the audit's
peak RSS (GNU time). A boto3 listing of the same prefix (no HEADs) is timed beside it.

  python3 bench/fleet_audit_bench.py [--objects 100000] [--partitions 16] [--runs 3]
                                     [--concurrency 16,64] [--threads 32] [--skip-build]
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import run

TOPIC = "fleet"
BUCKET = "fleet-bench"
PREFIX = "lake"
SPAN = 100  # offsets per object


def key(partition, start, day="2026-12-04"):
    return f"{PREFIX}/topic={TOPIC}/dt={day}/partition={partition}/{TOPIC}+{partition}+{start:020d}.parquet"


def populate(endpoint, objects, partitions, threads):
    import boto3
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      config=Config(max_pool_connections=threads * 2, retries={"max_attempts": 10}))
    per = [objects // partitions + (1 if p < objects % partitions else 0) for p in range(partitions)]

    def put(job):
        p, i = job
        start = i * SPAN
        meta = {"tidemark-topic": TOPIC, "tidemark-partition": str(p), "tidemark-start": str(start),
                "tidemark-end": str(start + SPAN - 1), "tidemark-records": str(SPAN), "tidemark-rejected": "0",
                "tidemark-sha256": "0" * 64, "tidemark-size": "64"}
        s3.put_object(Bucket=BUCKET, Key=key(p, start), Body=b"P" * 64, Metadata=meta)

    jobs = [(p, i) for p in range(partitions) for i in range(per[p])]
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for n, _ in enumerate(pool.map(put, jobs, chunksize=64), 1):
            if n % 10_000 == 0:
                print(f"  {n} objects written ({n / (time.perf_counter() - t):.0f}/s)", file=sys.stderr)
    return {p: per[p] * SPAN for p in range(partitions)}, time.perf_counter() - t


def commit(bootstrap, group, ends):
    """Commits each partition's chain end + 1 for the group (a plain commit, no subscription)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(TOPIC, p, e) for p, e in ends.items()], asynchronous=False)
        got = c.committed([TopicPartition(TOPIC, p) for p in ends], timeout=30)
        return all(tp.offset == ends[tp.partition] for tp in got)
    finally:
        c.close()


def boto3_list(endpoint):
    import boto3
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    t, n = time.perf_counter(), 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX + "/"):
        n += len(page.get("Contents", []))
    return n, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", default="16,64")
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    os.environ.update(benchlib.AWS_TEST_ENV)  # boto3 in this process; moto accepts any credentials
    binp = benchlib.release_binaries(args.skip_build)
    with tempfile.TemporaryDirectory(prefix="tidemark-fleet-bench-", ignore_cleanup_errors=True) as work, \
            benchlib.local_stack(os.path.join(work, "stack"), f"{TOPIC}:{args.partitions}", binp) as stack:
        measure(args, stack, work, binp)


def measure(args, stack, work, binp):
    stack.create_bucket(BUCKET)
    ends, put_secs = populate(stack.endpoint, args.objects, args.partitions, args.threads)
    print(f"populate: {args.objects} objects with boto3 ({args.threads} threads) in {put_secs:.1f} s", file=sys.stderr)
    group = "fleet-bench"
    committed = commit(stack.bootstrap, group, ends)
    if not committed:
        print("commit: the broker did not keep the offsets; the audit runs with none committed", file=sys.stderr)
    conf = os.path.join(work, "t.toml")
    with open(conf, "w") as f:
        f.write(f'[kafka]\nbrokers = "{stack.bootstrap}"\ntopics = ["{TOPIC}"]\ngroup_id = "{group}"\n'
                f'[sink]\nurl = "s3://{BUCKET}/{PREFIX}"\nendpoint = "{stack.endpoint}"\n'
                f'[staging]\ndir = "{work}/staging"\nmanifest = "{work}/state/manifest.sqlite"\n')
    n, list_secs = boto3_list(stack.endpoint)
    print(f"boto3 list_objects_v2 only: {n} objects in {list_secs:.2f} s")
    for conc in [int(c) for c in args.concurrency.split(",")]:
        secs, rss = [], []
        for _ in range(args.runs):
            cmd = [os.path.join(binp, "etl-audit"), "--config", conf, "--fleet", "--json", "--concurrency", str(conc)]
            # Peak RSS from GNU time, a small process: a child spawned by this one would inherit
            # this process's RSS (boto3, 100,000 puts: ~250 MiB) as its ru_maxrss high-water mark.
            with tempfile.TemporaryFile("w+") as out, tempfile.NamedTemporaryFile("r") as tf, \
                    tempfile.TemporaryFile("w+") as err:
                t = time.perf_counter()
                rc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name] + cmd, stdout=out, stderr=err,
                                    env=stack.env).returncode
                secs.append(time.perf_counter() - t)
                rss.append(int((tf.read().strip().splitlines() or ["0"])[-1]) / 1024)
                out.seek(0)
                err.seek(0)
                out, err = out.read(), err.read()
            report = json.loads(out or "{}")
            if rc != 0 or not report.get("consistent") or report.get("batches") != args.objects:
                sys.exit(f"bench: etl-audit --fleet exit {rc}, "
                         f"{report.get('batches')} objects, counts {report.get('counts')}\n{err[-2000:]}")
        m = statistics.median(secs)
        print(f"etl-audit --fleet --concurrency {conc}: {args.objects} objects over {args.partitions} partitions"
              f"{'' if committed else ' (no committed offsets)'}: median {m:.2f} s ({args.objects / m:.0f} objects/s; "
              f"runs {', '.join(f'{s:.2f}' for s in secs)}); peak RSS {max(rss):.0f} MiB")


if __name__ == "__main__":
    main()
