"""Chaos scenario `eventtime`: 12. Event-time layout ([sink] path over the event time) under kill -9."""
import json
import os
import random
import sys
import time

from ..deployment import Deployment, produce
from ..processes import run_capture
from ..stack import Stack
from ..verification import kill_after_assignment, leftover_uploads, verify

TEMPLATE = 'path = "topic={topic}/dt={event_date}/hour={event_hour}"'


def check_layout(ctx, st, sink):
    """tools/check_layout.py: DuckDB with hive_partitioning, every row inside its dt=/hour=."""
    argv = [sys.executable, os.path.join(ctx.tools, "check_layout.py"), "--sink", sink, "--endpoint", st.s3]
    rc, out, err = run_capture(ctx.procs, "check_layout", argv, env=ctx.aws_env, timeout=600)
    try:
        return rc, json.loads(out.strip().splitlines()[-1])
    except Exception:
        return rc, {"error": (out + err)[-1500:]}


def scenario(ctx, res, work):
    """kill -9 at random times while out-of-order records (late by up to 20 minutes) are cut
    into hourly event-time paths; then a fresh instance (new group, new manifest) must find
    every object by its event-time key and write nothing."""
    count = 300_000 if not ctx.args.short else 40_000
    kills = 20 if not ctx.args.short else 4
    rng = random.Random(ctx.args.seed + 12)
    # 40 ms of event time per record: 300,000 records span 3.3 hours, 40,000 span 27 minutes
    # (one hour boundary, as the base time is 00:00 and late records fall before it).
    late = ["--event-step-ms", "40", "--late-fraction", "0.01", "--late-max-s", "1200"]
    with Stack(ctx, os.path.join(work, "stack"), [("events", 4)]) as st:
        bucket = st.bucket("chaos-events")
        sink = f"s3://{bucket}/lake"
        dep = Deployment(st, work, "eventtime", ["events"], "g-events", sink, max_records=3000, max_age="1s",
                         session_timeout="3s", orphan_upload_grace="1s", extra_sink=TEMPLATE)
        prod = produce(st, "events", count, os.path.join(dep.dir, "produce.out"), partitions=4, seed=ctx.args.seed,
                       bad=0.01, short=True, dense=True, background=True, extra_args=late)
        try:
            for k in range(kills):
                if not kill_after_assignment(ctx, res, dep, rng, 0.2, 3.0, k):
                    break
            rc = ctx.procs.wait(prod, 900)
            res.check(rc == 0, f"producer exit {rc}")
        finally:
            if prod.poll() is None:
                ctx.procs.stop(prod)
        rc, out = dep.run_engine(idle="4s", timeout=900)
        res.runs += 1
        res.check(rc == 0, f"final engine run exit {rc}: {out[-800:]}")
        time.sleep(1.5)
        rc, rout, rerr = dep.recover()
        res.runs += 1
        res.check(rc == 0, f"etl-recover exit {rc}: {(rout + rerr)[-600:]}")
        n = leftover_uploads(st, bucket)
        res.leftover += n
        res.check(n == 0, f"{n} multipart uploads left after etl-recover")
        v = verify(st, "events", sink, count)
        res.judge(v)
        res.audit_ok(dep)
        rc, lay = check_layout(ctx, st, sink)
        res.check(rc == 0, f"rows outside their event-time path: {json.dumps(lay)[:1200]}")
        # A fresh instance: new group (from offset 0), new manifest. Its probe must find every
        # object at its event-time key; nothing may be written again.
        fresh = Deployment(st, work, "eventtime-fresh", ["events"], "g-events-fresh", sink, max_records=2000,
                           max_age="1s", session_timeout="3s", extra_sink=TEMPLATE)
        rc, out = fresh.run_engine(idle="4s", timeout=900)
        res.runs += 1
        res.check(rc == 0, f"fresh instance exit {rc}: {out[-800:]}")
        again = verify(st, "events", sink, count)
        res.judge(again, "after a fresh instance")
        res.check(again.get("parquet_objects") == v.get("parquet_objects"),
                  f"the fresh instance wrote objects again: {v.get('parquet_objects')} -> {again.get('parquet_objects')}")
        left = dep.staged_files()
        res.check(not left, f"staging not empty: {left[:5]}")
        res.records += count
        res.notes.append(f"{kills} kills while {count:,} records (1% late by up to 20 min, 1% malformed) were cut into "
                         f"`topic=/dt=/hour=` event-time paths on moto: {lay.get('objects')} objects in {lay.get('paths')} "
                         f"hour paths, {lay.get('rows_outside_their_path')} rows outside their path (DuckDB hive_partitioning); "
                         f"then a fresh instance (new group and manifest) probed every event-time key and wrote "
                         f"{(again.get('parquet_objects') or 0) - (v.get('parquet_objects') or 0)} objects")
