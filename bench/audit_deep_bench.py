#!/usr/bin/env python3
"""Deep audit throughput (`make bench-audit-deep`, part of `make bench`; not a test).

Brings up its own stack (.stack-bench-audit/), produces --records log records over 16
partitions, lets etl-engine (release) write them to moto as uncompressed Parquet (sink.compression
= "none", so that the objects are large: deep audit cost is download + SHA-256 + footer, whatever
the page codec), then times `etl-audit --deep` --runs times and prints MB/s of object bytes
(median). A shallow audit of the same sink is timed beside it.

  python3 bench/audit_deep_bench.py [--records 1000000] [--runs 3] [--skip-build]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACK = os.path.join(ROOT, ".stack-bench-audit")
ENV = dict(os.environ, TIDEMARK_STACK_DIR=STACK, TIDEMARK_STACK_TOPICS="aud:16", AWS_ACCESS_KEY_ID="testing",
           AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")


def run(cmd, check=True, env=ENV):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    if not args.skip_build:
        run(["swift", "build", "-c", "release"])
    binp = run(["swift", "build", "-c", "release", "--show-bin-path"]).stdout.strip()
    env = dict(ENV, TIDEMARK_DEVBROKER=os.path.join(binp, "etl-devbroker"))
    run([os.path.join(ROOT, "tools/stack"), "up"], env=env)
    work = tempfile.mkdtemp(prefix="tidemark-audit-bench-")
    try:
        bootstrap = open(os.path.join(STACK, "kafka.bootstrap")).read().strip()
        endpoint = open(os.path.join(STACK, "s3.endpoint")).read().strip()
        run([sys.executable, "-c", f"import boto3; boto3.client('s3', endpoint_url='{endpoint}', "
             "region_name='us-east-1').create_bucket(Bucket='audit-bench')"])
        run([sys.executable, os.path.join(ROOT, "tools/produce_logs.py"), "--bootstrap", bootstrap, "--topic", "aud",
             "--count", str(args.records), "--partitions", "16", "--partition-major", "--linger-ms", "100"])
        conf = os.path.join(work, "t.toml")
        with open(conf, "w") as f:
            f.write(f'[kafka]\nbrokers = "{bootstrap}"\ntopics = ["aud"]\ngroup_id = "audit-bench"\n'
                    f'[sink]\nurl = "s3://audit-bench/lake"\nendpoint = "{endpoint}"\ncompression = "none"\n'
                    f'[staging]\ndir = "{work}/staging"\nmanifest = "{work}/state/manifest.sqlite"\n'
                    '[batch]\nmax_records = 50000\n')
        run([os.path.join(binp, "etl-engine"), "--config", conf, "--until-idle", "2s"])
        results = {}
        for mode in ("shallow", "deep"):
            secs, report = [], None
            for _ in range(args.runs):
                t = time.perf_counter()
                p = run([os.path.join(binp, "etl-audit"), "--config", conf, "--json"] + (["--deep"] if mode == "deep" else []))
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
    finally:
        run([os.path.join(ROOT, "tools/stack"), "down"], check=False, env=env)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
