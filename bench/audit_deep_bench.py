#!/usr/bin/env python3
"""Deep audit throughput (`make bench-audit-deep`, part of `make bench`; not a test).

Brings up its own stack (.stack-bench-audit/), produces --records log records over 16
partitions, lets etl-engine (release) write them to moto as uncompressed Parquet (sink.compression
= "none", so that the objects are large: deep audit cost is download + SHA-256 + footer, whatever
the page codec), checks that lake exactly once with tools/verify_sink.py, then times
`etl-audit --deep` --runs times and prints MB/s of object bytes
(median). A shallow audit of the same sink is timed beside it.

  python3 bench/audit_deep_bench.py [--records 1000000] [--runs 3] [--skip-build]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import benchlib
from benchlib import run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    binp = benchlib.release_binaries(args.skip_build)
    with benchlib.local_stack(".stack-bench-audit", "aud:16", binp) as stack, \
            tempfile.TemporaryDirectory(prefix="tidemark-audit-bench-", ignore_cleanup_errors=True) as work:
        measure(args, stack, work, binp)


def measure(args, stack, work, binp):
    stack.create_bucket("audit-bench")
    stack.produce("aud", args.records, 16, partition_major=True)
    conf = os.path.join(work, "t.toml")
    with open(conf, "w") as f:
        f.write(f'[kafka]\nbrokers = "{stack.bootstrap}"\ntopics = ["aud"]\ngroup_id = "audit-bench"\n'
                f'[sink]\nurl = "s3://audit-bench/lake"\nendpoint = "{stack.endpoint}"\ncompression = "none"\n'
                f'[staging]\ndir = "{work}/staging"\nmanifest = "{work}/state/manifest.sqlite"\n'
                '[batch]\nmax_records = 50000\n')
    run([os.path.join(binp, "etl-engine"), "--config", conf, "--until-idle", "2s"], env=stack.env)
    # Every benchmark run must also be exactly once, judged by reading the sink back (not by etl-audit).
    v = run([sys.executable, os.path.join(benchlib.ROOT, "tools/verify_sink.py"), "--bootstrap", stack.bootstrap,
             "--topic", "aud", "--sink", "s3://audit-bench/lake", "--endpoint", stack.endpoint,
             "--expect", str(args.records)], env=stack.env, check=False)
    if v.returncode != 0:
        sys.exit(f"bench: verify_sink.py found the engine's lake not exactly once:\n{v.stdout[-3000:]}")
    results = {}
    for mode in ("shallow", "deep"):
        secs, report = [], None
        for _ in range(args.runs):
            t = time.perf_counter()
            p = run([os.path.join(binp, "etl-audit"), "--config", conf, "--json"] + (["--deep"] if mode == "deep" else []),
                    env=stack.env)
            secs.append(time.perf_counter() - t)
            report = json.loads(p.stdout)
            if not report.get("consistent"):
                sys.exit(f"bench: audit found discrepancies: {report.get('counts')}")
        results[mode] = (secs, report)
    objects, nbytes = results["deep"][1]["objects"], results["deep"][1]["bytes"]
    for mode, (secs, _) in results.items():
        m = statistics.median(secs)
        print(f"etl-audit {mode:8s} {objects} objects, {nbytes / 1e6:.1f} MB: median {m:.2f} s "
              f"({nbytes / 1e6 / m:.1f} MB/s; runs {', '.join(f'{s:.2f}' for s in secs)})")

if __name__ == "__main__":
    main()
