"""The command line of tools/chaos.py: options, the scenario runner, the exit status."""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from .processes import Procs
from .report import Result, write_reports
from .runtime import AWS_ENV, ROOT, Context, say
from .scenarios import SCENARIOS

# The --help text (unchanged from the single-file tools/chaos.py).
USAGE = """Tidemark's crash and fault suite (issue #10): drives the real binaries (etl-engine,
etl-recover, etl-audit, etl-devbroker) against a local stack it owns (moto_server + dev broker on
127.0.0.1, one stack per scenario) and judges every run only by reading the sink back with
pyarrow/DuckDB (tools/verify_sink.py: every Kafka offset exactly once, values equal) plus
`etl-audit --json`; exactly-once is never decided by the engine's own reading code.

  tools/chaos.py --short               CI form (< 5 min): table in build/chaos-short/results.md
  tools/chaos.py                       full form (make chaos, < 30 min): writes docs/reliability.md
  tools/chaos.py --only kill,disk      a subset (table in build/chaos/results.md)
  options: --bin DIR (default: `swift build --show-bin-path`), --seed N, --jobs N, --keep

Work directories (configs, every process's log) are under build/chaos*/<scenario>/ and are
kept when a scenario fails (or with --keep).

Scenarios: failpoints, kill, s3, broker, rebalance, disk, badinput, security, edges,
transactional (see docs/reliability.md).
Exit status: 0 when every scenario that ran passed (NOT RUN is reported, and is a failure too
unless --allow-not-run); 1 otherwise. Every process the suite starts is stopped by its PID, also
on failure or interrupt.
"""


def run_scenario(ctx, name, title, fn, out_root):
    res = Result(name, title)
    work = os.path.join(out_root, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    t0 = time.time()
    say(f"{name}: start")
    try:
        fn(ctx, res, work)
    except Exception as e:
        res.failures.append(f"suite error: {e!r}")
        say(f"{name}: ERROR {traceback.format_exc()}")
    res.seconds = time.time() - t0
    say(f"{name}: {res.result} in {res.seconds:.0f}s" + (f" ({'; '.join(res.failures)[:800]})" if res.failures else ""))
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="CI form (< 5 minutes)")
    ap.add_argument("--only", help="comma-separated scenario names: " + ",".join(s[0] for s in SCENARIOS))
    ap.add_argument("--bin", help="directory of the etl-* executables (default: swift build --show-bin-path)")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--jobs", type=int, default=0, help="scenarios (and failpoint cells) run at once")
    ap.add_argument("--out", help="work and results directory (default build/chaos[-short])")
    ap.add_argument("--keep", action="store_true", help="keep the work directories (logs, configs) on success")
    ap.add_argument("--allow-not-run", action="store_true", help="NOT RUN scenarios do not fail the suite")
    args = ap.parse_args(argv)
    if args.jobs <= 0:
        args.jobs = 3 if args.short else 2
    for k, v in AWS_ENV.items():   # boto3 in this process (moto accepts any credentials)
        os.environ.setdefault(k, v)
    bin_dir = args.bin or subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True,
                                         text=True, check=True).stdout.strip()
    for exe in ("etl-engine", "etl-recover", "etl-audit", "etl-devbroker"):
        if not os.access(os.path.join(bin_dir, exe), os.X_OK):
            print(f"chaos: {bin_dir}/{exe} is missing; run `swift build` first (or pass --bin)", file=sys.stderr)
            return 2
    ctx = Context(args, bin_dir, Procs())
    chosen = [s for s in SCENARIOS if not args.only or s[0] in args.only.split(",")]
    if any(s[0] == "failpoints" for s in chosen):
        try:
            ctx.failpoints   # read once from `etl-engine --list-failpoints`, before any stack starts
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            print(f"chaos: cannot read the failpoint names: {e}", file=sys.stderr)
            return 2
    out_root = os.path.abspath(args.out or os.path.join(ctx.root, "build", "chaos-short" if args.short else "chaos"))
    os.makedirs(out_root, exist_ok=True)
    form = "short" if args.short else "full"

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.time()
    results = []
    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        futures = [pool.submit(run_scenario, ctx, n, t, f, out_root) for n, t, f in chosen]
        results = [f.result() for f in futures]
    finally:
        # On an interrupt: stop every child by PID first, so the scenario threads fail fast,
        # then wait for them (they unmount what they mounted on the way out).
        ctx.procs.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        ctx.procs.stop_all()
    total = time.time() - t0
    write_reports(ctx, results, total, form, out_root)
    failed = [r for r in results if r.result == "FAIL" or (r.result == "NOT RUN" and not args.allow_not_run)]
    if not failed and not args.keep:
        for n, _, _ in chosen:
            shutil.rmtree(os.path.join(out_root, n), ignore_errors=True)
    return 1 if failed else 0
