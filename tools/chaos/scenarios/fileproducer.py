"""Chaos scenario `fileproducer`: 4b. File producer (etl-produce) under Produce faults and kill -9."""
import collections
import json
import os
import sys
import time

from ..processes import run, tail
from ..stack import Stack


def scenario(ctx, res, work):
    """etl-produce (issue #9) following a growing app.log while the dev broker answers Produce
    with errors and goes down, and while the producer itself is killed -9: every line of the
    file must be in Kafka exactly once, in order (tools/verify_produce.py, confluent-kafka)."""
    lines = 40_000 if not ctx.args.short else 20_000
    with Stack(ctx, os.path.join(work, "stack"), [("fp", 4)]) as st:
        d = os.path.join(work, "fileproducer")
        os.makedirs(d, exist_ok=True)
        log_file, state = os.path.join(d, "app.log"), os.path.join(d, "state")
        gen = ctx.procs.start("etl-loggen", [os.path.join(ctx.bin, "etl-loggen"), "--out", log_file, "--lines", str(lines),
                                         "--rate", str(lines // 20), "--seed", "9"], log_path=os.path.join(d, "loggen.log"))

        def start_producer():
            res.runs += 1
            return ctx.procs.start("etl-produce", [os.path.join(ctx.bin, "etl-produce"), "--file", log_file, "--topic", "fp",
                                               "--brokers", st.bootstrap, "--key", "serial", "--state", state,
                                               "--until-idle", "8s"], log_path=os.path.join(d, f"produce-{res.runs}.log"))
        prod = start_producer()
        try:
            schedule = [
                (3, ["push-errors Produce NOT_LEADER_OR_FOLLOWER 3", "push-errors Produce REQUEST_TIMED_OUT 2"]),
                (3, ["kill-producer"]),
                (2, ["push-errors Produce NOT_ENOUGH_REPLICAS 3"]),
                (3, ["broker-down 1"]),
                (3, ["broker-up 1"]),
                (2, ["kill-producer"]),
                (2, ["push-errors Produce REQUEST_TIMED_OUT 3"]),
            ]
            kinds = collections.Counter()
            for delay, cmds in schedule:
                time.sleep(delay)
                for c in cmds:
                    res.faults += 1
                    if c == "kill-producer":
                        ctx.procs.kill9(prod)
                        prod = start_producer()
                        kinds["kill -9 etl-produce"] += 1
                        continue
                    a = st.ctl(c)
                    res.check(a == "ok", f"control '{c}' answered {a}")
                    kinds[c.split()[0] + (" " + c.split()[1] if c.startswith("push") else "")] += 1
            time.sleep(2)
            st.ctl("clear-errors Produce")
            res.check(ctx.procs.wait(gen, 120) == 0, "etl-loggen failed")
            rc = ctx.procs.wait(prod, 300)
            if rc != 0:
                # A delivery that failed for good ends the producer with its checkpoint intact;
                # the resume rule makes the restart exact. Reported, then judged by the check below.
                res.notes.append(f"etl-produce exited {rc} during the faults; restarted: "
                                 f"{tail(prod.log_path, 300).strip()[-200:]}")
                prod = start_producer()
                rc = ctx.procs.wait(prod, 300)
            res.check(rc == 0, f"etl-produce exit {rc}: {tail(prod.log_path, 600)}")
        finally:
            for p in (gen, prod):
                if p.poll() is None:
                    ctx.procs.stop(p)
        rc, out = run(ctx.procs, "verify_produce", [sys.executable, os.path.join(ctx.tools, "verify_produce.py"),
                                                "--bootstrap", st.bootstrap, "--topic", "fp", "--expect", str(lines),
                                         log_file], log_path=os.path.join(d, "verify.log"), timeout=300)
        summary = {}
        for line in reversed(out.strip().splitlines()):
            try:
                summary = json.loads(line)
                break
            except ValueError:
                continue
        counts = summary.get("problem_counts", {})
        res.duplicates += counts.get("duplicate", 0)
        res.losses += sum(n for _, n, _ in summary.get("problems", {}).get("missing", []))
        res.check(rc == 0, f"verify_produce.py: not exactly once: {out[-600:]}")
        res.records += lines
        res.notes.append("injected: " + ", ".join(f"{k} x{n}" for k, n in kinds.items())
                         + f"; verify_produce.py: {summary.get('records')} records of {lines} lines, "
                           f"problems {counts or 'none'}")

