#!/usr/bin/env python3
"""A/B of two etl-engine binaries on one topic (a development tool behind docs/benchmarks.md's
before/after figures; not part of `make bench`).

Brings up its own stack (.stack-ab/, the release dev broker + moto_server), produces N log
records once, then runs the engines alternately (A, B, A, B, ...) to the chosen sink with a
fresh consumer group, manifest and prefix per run, and prints per run and as medians: records/s
from the run summary (first record consumed to last commit), CPU seconds per GB of input, peak
RSS, and the summary's stage split. Every run's sink is checked with tools/verify_sink.py
(exactly once) unless --no-verify.

  bench/engine_ab.py --a DIR_A --b DIR_B [--records 2000000] [--partitions 32] [--runs 3]
                     [--sink file|s3] [--batch-records 25000] [--config-extra TOML] [--no-verify]

DIR_A and DIR_B are directories holding an `etl-engine`; the dev broker comes from
`swift build -c release --show-bin-path`.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid

import benchlib

ROOT = benchlib.ROOT
ENV = dict(os.environ, **benchlib.AWS_TEST_ENV)
BUCKET = "tidemark-ab"


def cpu_seconds(pid_file):
    """utime + stime of the process in `pid_file` (the stack's broker or moto), in seconds."""
    try:
        pid = open(pid_file).read().strip()
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def one_run(args, stack, work, label, bindir, n):
    run_dir = os.path.join(work, f"{label}-{n}")
    os.makedirs(run_dir)
    tag = uuid.uuid4().hex[:8]
    url = f"s3://{BUCKET}/{label}-{tag}" if args.sink == "s3" else f"file://{run_dir}/lake"
    conf = os.path.join(run_dir, "tidemark.toml")
    with open(conf, "w") as f:
        f.write(f'[kafka]\nbrokers = "{stack.bootstrap}"\ntopics = ["{args.topic}"]\ngroup_id = "ab-{tag}"\n'
                f'[sink]\nurl = "{url}"\n' + (f'endpoint = "{stack.endpoint}"\n' if args.sink == "s3" else "") +
                f'[staging]\ndir = "{run_dir}/staging"\nmanifest = "{run_dir}/state/manifest.sqlite"\n'
                f'[batch]\nmax_records = {args.batch_records}\n' + args.config_extra.replace("\\n", "\n") + "\n")
    broker_pid, moto_pid = os.path.join(stack.directory, "kafka.pid"), os.path.join(stack.directory, "s3.pid")
    before = (cpu_seconds(broker_pid), cpu_seconds(moto_pid))
    p = benchlib.run(["/usr/bin/time", "-f", "TIME %e %U %S %M", os.path.join(bindir, "etl-engine"),
                      "--config", conf, "--until-idle", "3s"], env=ENV)
    after = (cpu_seconds(broker_pid), cpu_seconds(moto_pid))
    summary = next((l for l in p.stderr.splitlines() if "run summary" in l), None)
    t = next((l for l in p.stderr.splitlines() if l.startswith("TIME ")), None)
    if not summary or not t:
        sys.exit(f"ab: {label} printed no run summary:\n{p.stderr[-3000:]}")
    kv = dict(re.findall(r"(\w+)=(\S+)", summary))
    _, wall, user, sys_, rss = t.split()
    r = {"records_per_s": args.records / float(kv["seconds"]), "cpu_s": float(user) + float(sys_),
         "rss_mib": int(rss) / 1024, "records": int(kv["records"]),
         "broker_cpu_s": after[0] - before[0], "moto_cpu_s": after[1] - before[1], "seconds": float(kv["seconds"]),
         "stages": {k: float(v) for k, v in kv.items() if k.startswith("stage_") or k.startswith("poll_thread_") or k.startswith("encoder_")}}
    if r["records"] != args.records:
        sys.exit(f"ab: {label} consumed {r['records']} records, expected {args.records}")
    if not args.no_verify:
        v = benchlib.run([sys.executable, os.path.join(ROOT, "tools/verify_sink.py"), "--bootstrap", stack.bootstrap,
                          "--topic", args.topic, "--sink", url, "--expect", str(args.records)]
                         + (["--endpoint", stack.endpoint] if args.sink == "s3" else []), env=ENV, check=False)
        if v.returncode != 0:
            sys.exit(f"ab: verify_sink.py failed for {label} run {n}:\n{v.stdout[-3000:]}\n{v.stderr[-2000:]}")
        r["exactly_once"] = True
    shutil.rmtree(run_dir, ignore_errors=True)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sink", choices=["file", "s3"], default="file")
    ap.add_argument("--batch-records", type=int, default=25_000)
    ap.add_argument("--config-extra", default="", help="TOML appended to each run's config (\\n for newlines)")
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args()
    args.topic = "ab"
    binp = benchlib.release_binaries(skip_build=True)
    results = {"A": [], "B": []}
    with benchlib.local_stack(".stack-ab", f"{args.topic}:{args.partitions}", binp) as stack, \
            tempfile.TemporaryDirectory(prefix="tidemark-ab-", ignore_cleanup_errors=True) as work:
        stack.create_bucket(BUCKET)
        stack.produce(args.topic, args.records, args.partitions, partition_major=True)
        mb = None
        for n in range(args.runs):
            for label, d in (("A", args.a), ("B", args.b)):
                r = one_run(args, stack, work, label, d, n)
                results[label].append(r)
                print(f"{label} run {n}: {r['records_per_s']:,.0f} rec/s over {r['seconds']:.2f} s, engine {r['cpu_s']:.2f} CPU s, "
                      f"broker {r['broker_cpu_s']:.2f} CPU s, moto {r['moto_cpu_s']:.2f} CPU s, "
                      f"RSS {r['rss_mib']:.0f} MiB, {r['stages']}", flush=True)
    for label in ("A", "B"):
        rs = results[label]
        med = lambda k: statistics.median([r[k] for r in rs])  # noqa: E731
        runs = ", ".join(f"{r['records_per_s']:,.0f}" for r in rs)
        print(f"{label}: median {med('records_per_s'):,.0f} rec/s (runs {runs}), "
              f"median {med('cpu_s'):.2f} CPU s, peak RSS {med('rss_mib'):.0f} MiB"
              + ("; every run exactly once (verify_sink.py)" if all(r.get("exactly_once") for r in rs) else ""))


if __name__ == "__main__":
    main()
