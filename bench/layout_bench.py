#!/usr/bin/env python3
"""Event-time layouts: how many objects late records cost (`make bench-layout`, part of `make bench`).

One batch is open per partition and a batch holds one path (docs/protocol.md, "Path cut"), so
every record whose path differs from the open batch's cuts it. This bench produces the same
stream (4 partitions, 200,000 records over three hours of event time, i.e. ~16,700 records per
partition-hour) with several shares of late records, runs etl-engine with `--until-idle` into a
file:// sink for each template, and counts the objects with tools/check_layout.py (DuckDB), which
also checks that every row lies in its own path; tools/verify_sink.py checks every run exactly once. Size and age cuts are set out of the way
(max_records 1,000,000, max_age 10 min), so the counts show the path cuts alone.

  python3 bench/layout_bench.py [--records 200000] [--skip-build | --bin DIR]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import benchlib
from benchlib import run

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")

PROFILES = [("in order", 0.0, 0), ("0.1% late, up to 5 min", 0.001, 300), ("1% late, up to 20 min", 0.01, 1200),
            ("5% late, up to 60 min", 0.05, 3600)]
TEMPLATES = [("hourly event time", "topic={topic}/dt={event_date}/hour={event_hour}", "event_time"),
             ("daily event time", "topic={topic}/dt={event_date}", "event_time"),
             ("hourly Kafka time", "topic={topic}/dt={kafka_date}/hour={kafka_hour}", "kafka_timestamp")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--bin", help="use the executables in this directory (the counts do not depend on the build)")
    args = ap.parse_args()
    binp = args.bin or benchlib.release_binaries(args.skip_build)
    step_ms = max(1, 3 * 3600 * 1000 // args.records)
    rows = []
    topics = " ".join(f"late{i}:4" for i in range(len(PROFILES)))
    with benchlib.local_stack(".stack-bench-layout", topics, binp) as stack:
        for i, (label, frac, late_s) in enumerate(PROFILES):
            topic = f"late{i}"
            run([sys.executable, os.path.join(TOOLS, "produce_logs.py"), "--bootstrap", stack.bootstrap, f"--topic={topic}",
                 "--count", str(args.records), "--partitions", "4", "--short-messages", "--dense",
                 "--event-step-ms", str(step_ms), "--late-fraction", str(frac), "--late-max-s", str(late_s)], env=stack.env)
            for tname, template, column in TEMPLATES:
                work = tempfile.mkdtemp(prefix="layout-bench-")
                try:
                    conf = benchlib.engine_config(work, stack.bootstrap, topic, "lb", sink=f'path = "{template}"\n',
                                                  batch='max_records = 1000000\nmax_age = "10m"\n')
                    run([os.path.join(binp, "etl-engine"), "--config", conf, "--until-idle", "3s"], env=stack.env)
                    out = run([sys.executable, os.path.join(TOOLS, "check_layout.py"), "--sink", f"file://{work}/lake",
                               "--column", column], env=stack.env, check=False)
                    doc = json.loads(out.stdout.strip().splitlines()[-1])
                    # Every benchmark run must also be exactly once, judged by reading the sink back.
                    v = run([sys.executable, os.path.join(TOOLS, "verify_sink.py"), "--bootstrap", stack.bootstrap,
                             "--topic", topic, "--sink", f"file://{work}/lake", "--expect", str(args.records)],
                            env=stack.env, check=False)
                    if v.returncode != 0:
                        sys.exit(f"bench: verify_sink.py found {label} / {tname} not exactly once:\n{v.stdout[-3000:]}")
                    rows.append((label, tname, doc))
                    print(f"{label:26} {tname:18} objects {doc['objects']:6}  paths {doc['paths']:3}  "
                          f"rows/object {doc['rows'] // max(1, doc['objects']):7}  rows outside their path "
                          f"{doc['rows_outside_their_path']}", flush=True)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
    print()
    print("| stream | template | objects | paths | objects per path and partition | rows per object | rows outside their path |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for label, tname, d in rows:
        print(f"| {label} | {tname} | {d['objects']:,} | {d['paths']} | {d['objects'] / max(1, d['paths'] * 4):.1f} | "
              f"{d['rows'] // max(1, d['objects']):,} | {d['rows_outside_their_path']} |")


if __name__ == "__main__":
    main()
