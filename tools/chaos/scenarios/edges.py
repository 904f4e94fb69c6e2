"""Chaos scenario `edges`: 9. Protocol edges: etl-recover vs a second engine, a lost staged file, dead letters."""
import json
import os
import time

from ..deployment import Deployment, produce
from ..stack import FaultProxy, Stack
from ..verification import manifest_states, staged_batches, verify


def hold_staged(dep, proxy, at_least, timeout=90, until=None):
    """Runs the engine while every PUT of a .parquet key fails (503 SlowDown), until its manifest
    holds `at_least` STAGED batches (and `until()` holds, when given); then kill -9. Dead-letter
    (.jsonl) PUTs go through."""
    proxy.rules([{"method": "PUT", "path_contains": ".parquet", "action": "status", "status": 503,
                  "code": "SlowDown", "times": -1}])
    eng = dep.start_engine()
    deadline = time.time() + timeout
    while time.time() < deadline and eng.poll() is None and (
            manifest_states(dep).get("STAGED", 0) < at_least or (until is not None and not until())):
        time.sleep(0.2)
    dep.ctx.procs.kill9(eng)
    proxy.rules([])
    return manifest_states(dep).get("STAGED", 0)


def scenario(ctx, res, work):
    """The edges of the exactly-once promise (issue 18): etl-recover after a second engine with
    other cuts, etl-recover after a lost staged file, dead letters of a batch that lost the race."""
    n = 5000
    with Stack(ctx, os.path.join(work, "stack"), [("edge1", 1), ("edge2", 1), ("edge3", 1)]) as st:
        bucket = st.bucket("chaos-edges")
        proxy = FaultProxy(st, work)
        try:
            # Case 1: engine A holds 3+ STAGED batches (PUTs failing) and is killed; engine B (its own
            # staging and manifest, the same group and sink, other batch cuts) delivers the
            # partition; then etl-recover runs with A's configuration.
            produce(st, "edge1", n, os.path.join(work, "produce1.out"), partitions=1, seed=11)
            common = dict(max_age="60s", max_in_flight=6, session_timeout="3s")
            a = Deployment(st, work, "e1-a", ["edge1"], "g-edge1", f"s3://{bucket}/lake", endpoint=proxy.url,
                           max_records=1000, **common)
            b = Deployment(st, work, "e1-b", ["edge1"], "g-edge1", f"s3://{bucket}/lake", max_records=700, **common)
            held = hold_staged(a, proxy, 3)
            res.runs += 1
            res.check(held >= 3, f"case 1: engine A held only {held} STAGED batches")
            rc, out = b.run_engine(idle="4s", timeout=180)
            res.runs += 1
            res.check(rc == 0, f"case 1: engine B exit {rc}: {out[-600:]}")
            rc, out, err = a.recover()
            res.check(rc in (0, 1), f"case 1: etl-recover exit {rc}: {err[-600:]}")
            v = verify(st, "edge1", f"s3://{bucket}/lake", n)
            res.judge(v, "case 1 (etl-recover after a second engine with other cuts):")
            # B's manifest knows every object in the sink: A created none (before the partition
            # machine, etl-recover's objects overlapped B's and this audit reported them).
            res.audit_ok(b, "case 1:")
            res.records += n

            # Case 2: A holds 5 STAGED batches and is killed; the first one's staged file is lost;
            # etl-recover; the engine dies at its first stage write, then runs to idle.
            produce(st, "edge2", n, os.path.join(work, "produce2.out"), partitions=1, seed=12)
            c = Deployment(st, work, "e2", ["edge2"], "g-edge2", f"s3://{bucket}/lake2", endpoint=proxy.url,
                           max_records=1000, **common)
            held = hold_staged(c, proxy, 5)
            res.runs += 1
            rows = staged_batches(c)
            res.check(held >= 2 and rows and rows[0][0] == 0, f"case 2: expected STAGED batches from offset 0, got {rows[:3]}")
            if rows:
                os.unlink(rows[0][2])
            rc, out, err = c.recover()
            res.check(rc in (0, 1), f"case 2: etl-recover exit {rc}: {err[-600:]}")
            rc, _ = c.run_engine(idle="4s", failpoints="after_stage_write@1", timeout=120)
            res.runs += 1
            rc, out = c.run_engine(idle="4s", timeout=180)
            res.runs += 1
            res.check(rc == 0, f"case 2: engine exit {rc}: {out[-600:]}")
            v = verify(st, "edge2", f"s3://{bucket}/lake2", n)
            res.judge(v, "case 2 (etl-recover after a lost staged file):")
            res.audit_ok(c, "case 2:")
            res.records += n
            # Case 3: 5% malformed input. A's dead-letter object for [0, 999] is PUT while every
            # .parquet PUT fails; A is killed and stays down; B delivers with 700-record cuts. A's
            # dead-letter object is then an orphan: etl-audit must report it, etl-recover (B's
            # configuration: the rule needs only the store) removes it.
            produce(st, "edge3", n, os.path.join(work, "produce3.out"), partitions=1, seed=13, bad=0.05)
            a3 = Deployment(st, work, "e3-a", ["edge3"], "g-edge3", f"s3://{bucket}/lake3", endpoint=proxy.url,
                            max_records=1000, **common)
            b3 = Deployment(st, work, "e3-b", ["edge3"], "g-edge3", f"s3://{bucket}/lake3", max_records=700, **common)
            def dead_letters():
                r = st.s3client().list_objects_v2(Bucket=bucket, Prefix="lake3/_rejected/")
                return [o["Key"] for o in r.get("Contents", [])]
            hold_staged(a3, proxy, 1, until=lambda: len(dead_letters()) >= 1)
            res.runs += 1
            dl = dead_letters()
            res.check(len(dl) >= 1, f"case 3: engine A left no dead-letter object ({dl})")
            rc, out = b3.run_engine(idle="4s", timeout=180)
            res.runs += 1
            res.check(rc == 0, f"case 3: engine B exit {rc}: {out[-600:]}")
            rc, doc = b3.audit()
            res.check(rc != 0 and doc.get("counts", {}).get("orphan_rejected", 0) >= 1,
                      f"case 3: etl-audit did not report the orphan dead-letter object: rc={rc} {json.dumps(doc.get('counts', doc))[:300]}")
            rc, out, err = b3.recover()
            res.check(rc == 0, f"case 3: etl-recover exit {rc}: {out[-400:]} {err[-400:]}")
            v = verify(st, "edge3", f"s3://{bucket}/lake3", n)
            res.judge(v, "case 3 (dead letters of a batch that lost its range):")
            res.audit_ok(b3, "case 3:")
            res.records += n
            res.notes.append(f"case 1: A held {held} STAGED batches of 1,000, B cut 700s, etl-recover with A's config; "
                             f"case 2: first staged file deleted, etl-recover, crash at the first stage write, restart; "
                             f"case 3: 5% malformed, A's dead-letter object PUT before it was killed, B delivered with other cuts; "
                             f"{n:,} records each, judged by verify_sink.py")
        finally:
            proxy.stop()

