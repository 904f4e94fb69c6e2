#!/usr/bin/env python3
"""Peak memory of etl-engine by partition count (`make bench-memory`, part of `make bench`; not a test).

Issue #22: peak RSS <= 256 MiB at 48 and at 480 partitions with default settings. Brings up its
own stack (release etl-devbroker + moto_server, state in .stack-bench-memory/), produces the same
number of records once into a topic of 48 and once into a topic of 480 partitions (round-robin,
tools/produce_logs.py --dense: the dev broker keeps only ~5 MiB per partition, and 2,000,000
records of 60-120 character messages take ~1.5 MiB of a partition at 48; at 480 partitions each
partition's ~4,200 records encode to more than 0.5 MiB, which is what an open batch buffers),
then for each topic runs `etl-engine --until-idle` with default settings (only brokers, topic,
group, sink and staging are configured) under GNU `/usr/bin/time -v` ("Maximum resident set
size"), and checks the sink with tools/verify_sink.py (exactly once) after every run.

Beside each loaded run, the same engine on an empty topic of the same partition count (assigned,
no data) gives the baseline: what the process, librdkafka and the partitions cost without records.

  python3 bench/memory_bench.py [--records 2000000] [--partitions 48,480] [--sinks file,s3]
                                [--runs 1] [--skip-build] [--skip-idle] [--json OUT] [--bin DIR]
--bin DIR runs etl-engine and etl-devbroker from DIR (e.g. a copy of an earlier build) instead of
the release build.
Prints one JSON line per run and a Markdown table at the end.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid

import benchlib

ROOT = benchlib.ROOT
ENV = dict(os.environ, **benchlib.AWS_TEST_ENV)
BUCKET = "tidemark-bench-memory"


def log(*a):
    print("bench-memory:", *a, file=sys.stderr, flush=True)


def engine_run(binp, stack, work, topic, sink, records, properties=(), budget=None):
    """One `etl-engine --until-idle` with default settings; returns peak RSS (KiB), wall seconds,
    the run summary's fields, and the verify_sink.py verdict (when `records` > 0)."""
    tag = uuid.uuid4().hex[:8]
    run_dir = os.path.join(work, f"run-{tag}")
    os.makedirs(run_dir)
    url = f"s3://{BUCKET}/mem-{tag}" if sink == "s3" else f"file://{run_dir}/lake"
    conf = os.path.join(run_dir, "tidemark.toml")
    with open(conf, "w") as f:
        f.write(f'[kafka]\nbrokers = "{stack.bootstrap}"\ntopics = ["{topic}"]\ngroup_id = "mem-{tag}"\n'
                f'[sink]\nurl = "{url}"\n' + (f'endpoint = "{stack.endpoint}"\n' if sink == "s3" else "") +
                f'[staging]\ndir = "{run_dir}/staging"\nmanifest = "{run_dir}/state/manifest.sqlite"\n')
        if budget:
            f.write(f'[batch]\nmemory_budget = "{budget}"\n')
        if properties:
            f.write("[kafka.properties]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in (p.split("=", 1) for p in properties)))
    started = time.monotonic()
    p = benchlib.run(["/usr/bin/time", "-v", os.path.join(binp, "etl-engine"), "--config", conf,
                      "--until-idle", "3s"], env=ENV)
    wall = time.monotonic() - started
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    if not m:
        sys.exit(f"bench-memory: no peak RSS in /usr/bin/time -v output:\n{p.stderr[-3000:]}")
    summary = next((l for l in p.stderr.splitlines() if "run summary" in l), "")
    kv = dict(re.findall(r"(\w+)=(\S+)", summary))
    r = {"topic": topic, "sink": sink, "peak_rss_mib": int(m.group(1)) / 1024, "wall_seconds": round(wall, 1),
         "records": int(kv.get("records", "0")), "batches": int(kv.get("batches", "0")),
         # The engine's own account of the open batches' row groups (absent before issue #22).
         "buffered_peak_mib": round(int(kv["buffered_peak_bytes"]) / 1048576, 1) if "buffered_peak_bytes" in kv else None,
         "early_row_groups": int(kv["early_row_groups"]) if "early_row_groups" in kv else None}
    if records:
        if r["records"] != records:
            sys.exit(f"bench-memory: engine consumed {r['records']} records, expected {records}:\n{p.stderr[-3000:]}")
        v = benchlib.run([sys.executable, os.path.join(ROOT, "tools/verify_sink.py"), "--bootstrap", stack.bootstrap,
                          "--topic", topic, "--sink", url, "--expect", str(records)]
                         + (["--endpoint", stack.endpoint] if sink == "s3" else []), env=ENV, check=False)
        if v.returncode != 0:
            sys.exit(f"bench-memory: verify_sink.py failed for {topic} -> {url}:\n{v.stdout[-3000:]}\n{v.stderr[-2000:]}")
        verdict = json.loads(v.stdout.strip().splitlines()[-1])
        r["exactly_once"] = True
        r["row_groups"] = row_groups(url, stack) if sink == "file" else None
        r["verify"] = {k: verdict[k] for k in ("records", "parquet_rows") if k in verdict}
    shutil.rmtree(run_dir, ignore_errors=True)
    return r


def row_groups(url, stack):
    """Row groups and Parquet objects in a file:// sink (early row-group flushes show as more row
    groups than objects)."""
    import pyarrow.parquet as pq
    root = url[len("file://"):]
    files = groups = 0
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith(".parquet"):
                files += 1
                groups += pq.ParquetFile(os.path.join(d, n)).metadata.num_row_groups
    return {"objects": files, "row_groups": groups}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--partitions", default="48,480")
    ap.add_argument("--sinks", default="file")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-idle", action="store_true", help="no empty-topic baseline runs")
    ap.add_argument("--json", default=os.path.join(ROOT, ".build", "memory-bench.json"),
                    help="also write every run's result to this file (default .build/memory-bench.json, read by bench/goals.py)")
    ap.add_argument("--stack", default=".stack-bench-memory", help="stack directory under the repository (default .stack-bench-memory)")
    ap.add_argument("--kafka-property", action="append", default=[], metavar="K=V",
                    help="a librdkafka property for every engine run (not a default setting: to find what takes memory)")
    ap.add_argument("--memory-budget", help="[batch] memory_budget for every engine run (e.g. 8MiB: makes the budget act)")
    ap.add_argument("--bin", help="directory of the etl-engine and etl-devbroker to measure (default: release build)")
    args = ap.parse_args()
    counts = [int(x) for x in args.partitions.split(",")]
    sinks = args.sinks.split(",")
    binp = args.bin or benchlib.release_binaries(args.skip_build)
    topics = " ".join([f"mem{n}:{n}" for n in counts] + [f"idle{n}:{n}" for n in counts])
    results = []
    with benchlib.local_stack(args.stack, topics, binp) as stack, \
            tempfile.TemporaryDirectory(prefix="tidemark-bench-memory-") as work:
        if "s3" in sinks:
            stack.create_bucket(BUCKET)
        for n in counts:
            log(f"producing {args.records:,} records into mem{n} ({n} partitions)")
            benchlib.run([sys.executable, os.path.join(ROOT, "tools/produce_logs.py"), "--bootstrap", stack.bootstrap,
                          "--topic", f"mem{n}", "--count", str(args.records), "--partitions", str(n),
                          "--dense"], env=stack.env)
        for n in counts:
            if not args.skip_idle:
                r = engine_run(binp, stack, work, f"idle{n}", "file", 0, args.kafka_property)
                r["partitions"], r["load"] = n, "idle (assigned, no records)"
                log(json.dumps(r))
                results.append(r)
            for sink in sinks:
                for _ in range(args.runs):
                    r = engine_run(binp, stack, work, f"mem{n}", sink, args.records, args.kafka_property, args.memory_budget)
                    r["partitions"], r["load"] = n, f"{args.records:,} records"
                    log(json.dumps(r))
                    results.append(r)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print("| partitions | load | sink | peak RSS MiB | row groups buffered at most (MiB) | early row groups | objects / row groups | wall s | exactly once |")
    print("| ---: | --- | --- | ---: | ---: | ---: | --- | ---: | --- |")
    for r in results:
        rg = r.get("row_groups")
        groups = f"{rg['objects']} / {rg['row_groups']}" if rg else "-"
        print(f"| {r['partitions']} | {r['load']} | {r['sink']} | {r['peak_rss_mib']:.0f} | "
              f"{r['buffered_peak_mib'] if r['buffered_peak_mib'] is not None else '-'} | "
              f"{r['early_row_groups'] if r['early_row_groups'] is not None else '-'} | "
              f"{groups} | {r['wall_seconds']} | "
              f"{'yes (verify_sink.py)' if r.get('exactly_once') else '-'} |")


if __name__ == "__main__":
    main()
