"""Chaos scenario `fileproducer`: 4b. File producer (etl-produce) under Produce faults and kill -9."""
import collections
import json
import os
import shutil
import subprocess
import sys
import time

from ..processes import run, tail
from ..stack import Stack


def scenario(ctx, res, work):
    """etl-produce (issue #9) following a growing app.log, rotated by rename about every 1 MB
    (issue #23), while the dev broker answers Produce with errors and goes down, and while the
    producer itself is killed -9: every line of every file must be in Kafka exactly once, in
    order (tools/verify_produce.py, confluent-kafka). Phase 2 (issue #23, its own directory and
    topic): rotations while the producer is down, each after a kill -9: a new file with the
    same 11-line header (rename to a dated name), dateext with unread lines, and copytruncate
    with unread lines and the same header in the truncated file; then a copytruncate while the
    producer runs but is blocked on a down broker, the file refilled past its read offset."""
    lines = 40_000 if not ctx.args.short else 20_000
    with Stack(ctx, os.path.join(work, "stack"), [("fp", 4), ("fp2", 4)]) as st:
        d = os.path.join(work, "fileproducer")
        os.makedirs(d, exist_ok=True)
        log_file, state = os.path.join(d, "app.log"), os.path.join(d, "state")
        gen = ctx.procs.start("etl-loggen", [os.path.join(ctx.bin, "etl-loggen"), "--out", log_file, "--lines", str(lines),
                                         "--rate", str(lines // 20), "--seed", "9", "--rotate-bytes", "1000000",
                                         "--keep", "50"], log_path=os.path.join(d, "loggen.log"))

        def start_producer(log_file=log_file, topic="fp", state=state):
            res.runs += 1
            return ctx.procs.start("etl-produce", [os.path.join(ctx.bin, "etl-produce"), "--file", log_file, "--topic", topic,
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
        files = [f"{log_file}.{k}" for k in range(50, 0, -1) if os.path.exists(f"{log_file}.{k}")] + [log_file]
        res.check(len(files) > 2, f"etl-loggen rotated only {len(files) - 1} times")

        # Phase 2 (issue #23): rotations while the producer is down, each after a kill -9.
        d2 = os.path.join(d, "phase2")
        os.makedirs(d2, exist_ok=True)
        log2, state2 = os.path.join(d2, "app.log"), os.path.join(d2, "state")
        header = "".join(f"=== chaos banner {i:02d}: the same header in every file ".ljust(98, "=") + "\n"
                         for i in range(11)).encode()
        serial = 0

        def write_lines(count, head=False):
            nonlocal serial
            if head:
                with open(log2, "ab") as f:
                    f.write(header)
            r = subprocess.run([os.path.join(ctx.bin, "etl-loggen"), "--out", log2, "--lines", str(count), "--seed", "10",
                                "--start-serial", str(serial)], capture_output=True)
            res.check(r.returncode == 0, f"etl-loggen (phase 2) failed: {r.stderr[-300:]}")
            serial += count

        def run_and_kill():
            p = start_producer(log2, "fp2", state2)
            time.sleep(2)
            ctx.procs.kill9(p)
            res.faults += 1
            kinds["kill -9 etl-produce"] += 1

        files2 = []
        write_lines(300, head=True)
        for step, name in (("same header", "20261121"), ("dateext", "20261122"), ("copytruncate", "20261123")):
            run_and_kill()
            if step == "copytruncate":
                write_lines(250)                       # not read before the copy
                shutil.copyfile(log2, f"{log2}-{name}")
                os.truncate(log2, 0)
                write_lines(300, head=True)
            else:
                write_lines(200)                       # not read before the rename
                os.rename(log2, f"{log2}-{name}")
                write_lines(300, head=step == "same header")
            files2.append(f"{log2}-{name}")
            kinds[f"{step} rotation while down"] += 1
        # copytruncate while the producer runs but is blocked on a down broker: when it reads on
        # at its old offset, the file holds other bytes there (refilled past it).
        prod = start_producer(log2, "fp2", state2)
        time.sleep(3)
        res.check(st.ctl("broker-down 1") == "ok", "broker-down refused")
        write_lines(250)
        time.sleep(1.5)
        shutil.copyfile(log2, f"{log2}-20261124")
        files2.append(f"{log2}-20261124")
        os.truncate(log2, 0)
        write_lines(400, head=True)
        time.sleep(1.5)
        res.check(st.ctl("broker-up 1") == "ok", "broker-up refused")
        res.faults += 2
        kinds["copytruncate across broker-down"] += 1
        files2.append(log2)
        rc = ctx.procs.wait(prod, 300)
        if rc != 0:
            res.notes.append(f"etl-produce (phase 2) exited {rc} across the broker outage; restarted")
            prod = start_producer(log2, "fp2", state2)
            rc = ctx.procs.wait(prod, 300)
        res.check(rc == 0, f"etl-produce (phase 2) exit {rc}: {tail(prod.log_path, 600)}")

        totals = []
        for topic, fs, label in (("fp", files, "verify"), ("fp2", files2, "verify2")):
            total = sum(1 for path in fs for _ in open(path, "rb"))
            rc, out = run(ctx.procs, label, [sys.executable, os.path.join(ctx.tools, "verify_produce.py"), "--bootstrap", st.bootstrap,
                                  "--topic", topic, "--expect", str(total), *fs],
                          log_path=os.path.join(d, f"{label}.log"), timeout=300)
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
            res.check(rc == 0, f"verify_produce.py ({topic}): not exactly once: {out[-600:]}")
            res.records += total
            totals.append(f"{topic}: {summary.get('records')} records of {total} lines in {len(fs)} files, "
                          f"problems {counts or 'none'}")
        res.notes.append("injected: " + ", ".join(f"{k} x{n}" for k, n in kinds.items())
                         + "; verify_produce.py: " + "; ".join(totals))
