#!/usr/bin/env python3
"""Latency from Kafka timestamp to committed object at a steady rate (`make bench-latency`, part of
`make bench`; issue #22). Results and their reading are in docs/benchmarks.md ("Latency").

One run on one machine, own stack in .stack-bench-latency/ (release etl-devbroker + moto_server):

1. the release etl-engine starts (continuously, `--until-idle`) on a fresh topic of --partitions
   partitions (default 8) with `[batch] max_age = --max-age` (default 5s) and the default size
   cuts, into moto (`--sink s3`, default) or a file:// directory (`--sink file`);
2. once it has its partitions, the Python confluent-kafka producer sends --rate records/s
   (default 10,000) for --seconds (default 60) in 10 ms slices (short log lines of ~54 B: the dev
   broker keeps ~5 MiB of message sets per partition, and every record must still be in the topic
   for verify_sink.py; linger.ms 10), each record's Kafka timestamp
   (CreateTime) set to the wall clock when it is handed to the client; delivery reports give each
   record's partition, offset and timestamp;
3. when the engine has gone idle and exited, every record's latency = the commit time of the
   batch whose offset range holds it minus its Kafka timestamp. The commit time is the `at` of
   the manifest's `UPLOADED->COMMITTED` event (wall clock, SQLite REAL seconds, microsecond
   resolution; written right after Kafka accepted the offset commit). The object became visible
   earlier, at the batch's `->UPLOADED` event: that latency is reported too. S3 LastModified is
   not used: moto (like S3) gives it in whole seconds;
4. tools/verify_sink.py checks every produced record is in the sink exactly once.

Prints the distribution (p50/p90/p99/p99.9/max) against max_age + 2 s; raw results in
.build/latency-bench.json.

  python3 bench/latency_bench.py [--rate 10000] [--seconds 60] [--max-age 5s] [--partitions 8]
                                 [--sink s3|file] [--skip-build | --bin DIR]
"""
import argparse
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone

import benchlib

ROOT = benchlib.ROOT
sys.path.insert(0, os.path.join(ROOT, "tools"))
import produce_logs  # noqa: E402  (the same log lines as every other bench)

from confluent_kafka import Producer  # noqa: E402

STACK_DIR = ".stack-bench-latency"
BUCKET = "tidemark-latency"


def log(*a):
    print("latency-bench:", *a, file=sys.stderr, flush=True)


def seconds(text):
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m)?\s*", text)
    if not m:
        sys.exit(f"bench: cannot read duration {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 1)) - 1))
    return sorted_values[k]


def produce(bootstrap, topic, rate, duration, partitions, env_ready):
    """Steady `rate` records/s for `duration` s, round robin; returns [(partition, offset, ts_ms)]
    from the delivery reports and the achieved rate."""
    rng = random.Random(1)
    base = datetime(2026, 11, 26, tzinfo=timezone.utc)
    delivered, errors = [], []

    def on_delivery(ts):
        # The delivery report's msg.timestamp() is not the CreateTime we set on the dev broker
        # (it came back as 0), so each record's own timestamp travels in the closure.
        def report(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                delivered.append((msg.partition(), msg.offset(), ts))
        return report

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 10,
                  "compression.type": "zstd", "queue.buffering.max.messages": 500000})
    env_ready.wait()
    total = int(rate * duration)
    slice_s = 0.01
    per_slice = max(1, int(rate * slice_s))
    started = time.time()
    i = 0
    late_slices = 0
    while i < total:
        due = started + (i / rate)
        now = time.time()
        if due > now:
            time.sleep(due - now)
        elif now - due > 0.05:
            late_slices += 1
        for _ in range(min(per_slice, total - i)):
            # Short lines (~54 B, as in docs/scaling.md): the dev broker (librdkafka's mock
            # cluster) keeps about 5 MiB of message sets per partition, and verify_sink.py must
            # read every record back from the topic.
            value = produce_logs.line(rng, i, base, short=True)
            ts = int(time.time() * 1000)
            while True:
                try:
                    p.produce(TOPIC[0], value=value, partition=i % partitions, timestamp=ts, on_delivery=on_delivery(ts))
                    break
                except BufferError:
                    p.poll(0.01)
            i += 1
        p.poll(0)
    elapsed = time.time() - started
    left = p.flush(120)
    if left or errors:
        sys.exit(f"bench: producer: {left} undelivered, errors {errors[:3]}")
    return delivered, total / elapsed, elapsed, late_slices


TOPIC = [None]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-age", default="5s")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--sink", choices=("s3", "file"), default="s3")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--bin", help="use the executables in this directory")
    args = ap.parse_args()
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    binp = args.bin or benchlib.release_binaries(args.skip_build)
    max_age = seconds(args.max_age)
    topic = f"latency-{uuid.uuid4().hex[:6]}"
    TOPIC[0] = topic
    raw = os.path.join(ROOT, ".build", "latency-bench.json")
    os.makedirs(os.path.dirname(raw), exist_ok=True)
    with benchlib.local_stack(STACK_DIR, f"{topic}:{args.partitions}", binp) as stack, \
            tempfile.TemporaryDirectory(prefix="latency-bench-", ignore_cleanup_errors=True) as work:
        if args.sink == "s3":
            stack.create_bucket(BUCKET)
            sink, endpoint = f"s3://{BUCKET}/lake", stack.endpoint
        else:
            sink, endpoint = f"file://{work}/lake", None
        state = os.path.join(work, "state")
        conf = os.path.join(work, "tidemark.toml")
        with open(conf, "w") as f:
            f.write(f'[kafka]\nbrokers = "{stack.bootstrap}"\ntopics = ["{topic}"]\ngroup_id = "{topic}"\n'
                    f'session_timeout = "6s"\n'
                    f'[sink]\nurl = "{sink}"\n' + (f'endpoint = "{endpoint}"\n' if endpoint else "")
                    + f'[staging]\ndir = "{work}/staging"\nmanifest = "{state}/manifest.sqlite"\n'
                    f'[batch]\nmax_age = "{args.max_age}"\n'
                    '[engine]\nlog_format = "json"\nstatus_interval = "5s"\n')
        logfile = os.path.join(work, "engine.log")
        idle = max(10, int(max_age * 2))
        out = open(logfile, "w")
        engine = subprocess.Popen([os.path.join(binp, "etl-engine"), "--config", conf, "--until-idle", f"{idle}s"],
                                  stdout=out, stderr=subprocess.STDOUT, env=stack.env)
        out.close()
        ready = threading.Event()
        try:
            deadline = time.time() + 120
            while time.time() < deadline and engine.poll() is None:
                with open(logfile) as f:
                    if sum(1 for line in f if "partition assigned" in line) >= args.partitions:
                        break
                time.sleep(0.2)
            else:
                sys.exit(f"bench: the engine did not get its partitions; log {logfile}")
            time.sleep(1)  # the first poll after the assignment
            ready.set()
            log(f"producing {args.rate:,} records/s for {args.seconds:g} s into {topic} ({args.partitions} partitions), "
                f"max_age {args.max_age}, sink {args.sink}")
            delivered, achieved, elapsed, late = produce(stack.bootstrap, topic, args.rate, args.seconds,
                                                         args.partitions, ready)
            log(f"produced {len(delivered):,} records in {elapsed:.1f} s ({achieved:,.0f}/s; {late} slices > 50 ms late)")
            rc = engine.wait(timeout=args.seconds + 600)
            if rc != 0:
                sys.exit(f"bench: etl-engine exited {rc}; log {logfile}")
        finally:
            if engine.poll() is None:
                engine.kill()
                engine.wait()
        db = sqlite3.connect(os.path.join(state, "manifest.sqlite"))
        batches = db.execute("SELECT id, partition, start_offset, end_offset, state FROM batches ORDER BY partition, start_offset").fetchall()
        at = {}
        for bid, kind, t in db.execute("SELECT batch_id, kind, at FROM events WHERE batch_id IS NOT NULL"):
            if kind == "UPLOADED->COMMITTED":
                at.setdefault(bid, {})["committed"] = t
            elif kind.endswith("->UPLOADED"):
                at.setdefault(bid, {})["uploaded"] = t
        db.close()
        ranges = {}
        for bid, p, s, e, st in batches:
            if st == "COMMITTED":
                ranges.setdefault(p, []).append((s, e, at[bid]["committed"], at[bid].get("uploaded")))
        lat_commit, lat_upload, missing = [], [], 0
        import bisect
        starts = {p: [r[0] for r in rs] for p, rs in ranges.items()}
        for p, off, ts in delivered:
            rs = ranges.get(p, [])
            k = bisect.bisect_right(starts.get(p, []), off) - 1
            if k < 0 or not (rs[k][0] <= off <= rs[k][1]):
                missing += 1
                continue
            lat_commit.append(rs[k][2] - ts / 1000)
            if rs[k][3] is not None:
                lat_upload.append(rs[k][3] - ts / 1000)
        lat_commit.sort()
        lat_upload.sort()
        vcmd = [sys.executable, os.path.join(ROOT, "tools/verify_sink.py"), "--bootstrap", stack.bootstrap,
                "--topic", topic, "--sink", sink, "--expect", str(len(delivered)), "--timeout", "300"]
        if endpoint:
            vcmd += ["--endpoint", endpoint]
        v = benchlib.run(vcmd, env=stack.env, check=False)
        try:
            verify = json.loads(v.stdout)
        except ValueError:
            verify = {"raw": v.stdout[-2000:] + v.stderr[-2000:]}
        qs = [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)]
        res = {"command": " ".join(sys.argv), "started": started_at,
               "rate_target": args.rate, "rate_achieved": round(achieved), "seconds": args.seconds,
               "late_slices": late, "partitions": args.partitions, "max_age_s": max_age, "sink": args.sink,
               "records": len(delivered), "records_without_committed_batch": missing, "batches": len(batches),
               "bound_s": max_age + 2,
               "commit_latency_s": {n: round(percentile(lat_commit, q), 3) for n, q in qs},
               "upload_latency_s": {n: round(percentile(lat_upload, q), 3) for n, q in qs},
               "min_commit_latency_s": round(lat_commit[0], 3) if lat_commit else None,
               "over_bound": sum(1 for x in lat_commit if x > max_age + 2),
               "verify_ok": v.returncode == 0, "verify": verify}
        json.dump(res, open(raw, "w"), indent=1)
        print(f"| latency (s) | " + " | ".join(n for n, _ in qs) + " |")
        print("| --- | " + " | ".join("---:" for _ in qs) + " |")
        for name, key in (("Kafka timestamp → offsets committed (COMMITTED)", "commit_latency_s"),
                          ("Kafka timestamp → object visible (UPLOADED)", "upload_latency_s")):
            print(f"| {name} | " + " | ".join(f"{res[key][n]:.3f}" for n, _ in qs) + " |")
        print(f"\n{len(delivered):,} records at {achieved:,.0f}/s over {args.partitions} partitions, {len(batches)} batches, "
              f"max_age {max_age:g} s: p99 {res['commit_latency_s']['p99']:.3f} s vs bound {max_age + 2:g} s "
              f"({'within' if res['commit_latency_s']['p99'] <= max_age + 2 else 'ABOVE'}); "
              f"{res['over_bound']} records above the bound; verify_sink: {'exactly once' if res['verify_ok'] else 'FAILED'}")
        log(f"raw results in {raw}")
        if missing or not res["verify_ok"]:
            sys.exit(f"bench: {missing} records in no committed batch, verify ok = {res['verify_ok']}")


if __name__ == "__main__":
    main()
