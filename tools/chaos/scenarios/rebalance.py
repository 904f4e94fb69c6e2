"""Chaos scenario `rebalance`: 5. Rebalance (3 engines) and SIGSTOP zombie."""
import collections
import os
import signal
import threading
import time

from ..deployment import Deployment, produce
from ..processes import tail
from ..stack import Stack
from ..verification import committed_offsets, verify


def scenario(ctx, res, work):
    """Members joining and leaving; a SIGSTOPped zombie."""
    count = 90_000 if not ctx.args.short else 45_000
    zcount = 40_000 if not ctx.args.short else 24_000
    with Stack(ctx, os.path.join(work, "stack"), [("reb", 6), ("zmb", 2)]) as st:
        bucket = st.bucket("chaos-reb")
        sink = f"s3://{bucket}/lake"
        deps = [Deployment(st, work, f"reb-{c}", ["reb"], "g-reb", sink, max_records=3000, max_age="1s",
                           session_timeout="4s") for c in "abc"]
        prod = produce(st, "reb", count, os.path.join(work, "produce-reb.out"), partitions=6, seed=5, rate=count / 30,
                       background=True)
        engines = {}
        try:
            plan = [(0, "start", 0), (5, "start", 1), (5, "start", 2), (5, "term", 1), (4, "kill", 2), (3, "start", 2),
                    (4, "start", 1)]
            for delay, action, i in plan:
                time.sleep(delay)
                if action == "start":
                    engines[i] = deps[i].start_engine(idle="8s")
                    res.runs += 1
                elif action == "term":
                    rc = ctx.procs.stop(engines[i], signal.SIGTERM, timeout=60)
                    res.check(rc == 0, f"engine {i} graceful stop exit {rc}: {tail(engines[i].log_path, 600)}")
                else:
                    ctx.procs.kill9(engines[i])
                res.faults += action != "start"
            rc = ctx.procs.wait(prod, 600)
            res.check(rc == 0, f"producer exit {rc}")
            for i, e in engines.items():
                if e.returncode is None:
                    rc = ctx.procs.wait(e, 600)
                    res.check(rc == 0, f"engine {i} exit {rc}: {tail(e.log_path, 600)}")
        finally:
            for p in [prod, *engines.values()]:
                if p.poll() is None:
                    ctx.procs.stop(p)
        v = verify(st, "reb", sink, count)
        res.judge(v, "join/leave")
        res.records += count
        audits = [deps[i].audit()[1] for i in range(3)]
        kinds = collections.Counter(k for a in audits for k, n in (a.get("counts") or {}).items() if n)
        # etl-audit knows one manifest: with three engines, each audit sees the other engines'
        # objects as unknown_object, their ranges as gaps in its own chain and the group's offsets
        # as ahead of its chain. verify_sink.py above proved those ranges are delivered exactly
        # once; any other kind (missing object, overlap, hash or size mismatch...) fails.
        res.check(set(kinds) <= {"unknown_object", "gap", "offset_ahead"},
                  f"join/leave: etl-audit found {dict(kinds)} (beyond what other engines' batches explain)")
        res.notes.append("3 engines in one group (own manifests, one bucket), 6 partitions: join, join, SIGTERM, "
                         "kill -9, restart, rejoin; per-engine etl-audit reports only what the other engines' "
                         f"batches explain ({dict(kinds)})")

        # The zombie: two engines, one SIGSTOPped past its session timeout while its partitions move.
        zsink = f"s3://{bucket}/zombie"
        z = [Deployment(st, work, f"zmb-{c}", ["zmb"], "g-zmb", zsink, max_records=2000, max_age="1s",
                        session_timeout="3s") for c in "xy"]
        prod = produce(st, "zmb", zcount, os.path.join(work, "produce-zmb.out"), partitions=2, seed=6,
                       rate=zcount / 25, background=True)
        samples = []
        stop_sampling = threading.Event()

        def sample():
            while not stop_sampling.is_set():
                try:
                    samples.append((time.time(), committed_offsets(st, "g-zmb", "zmb", 2)))
                except Exception:
                    pass
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        ez = ew = None
        try:
            ez = z[0].start_engine(idle="8s")
            time.sleep(2)
            ew = z[1].start_engine(idle="8s")
            res.runs += 2
            sampler.start()
            time.sleep(6)
            os.kill(ez.pid, signal.SIGSTOP)
            res.faults += 1
            time.sleep(10)   # > 3 s session timeout + rebalance: the partitions move to the other engine
            os.kill(ez.pid, signal.SIGCONT)
            rc = ctx.procs.wait(prod, 600)
            res.check(rc == 0, f"zombie producer exit {rc}")
            for name, e in (("zombie", ez), ("other", ew)):
                rc = ctx.procs.wait(e, 600)
                res.check(rc == 0, f"{name} engine exit {rc}: {tail(e.log_path, 600)}")
        finally:
            stop_sampling.set()
            for p in (prod, ez, ew):
                if p is not None and p.poll() is None:
                    ctx.procs.stop(p)
        if sampler.is_alive():
            sampler.join(5)
        backwards = []
        last = {}
        for t, offs in samples:
            for p, o in offs.items():
                if o >= 0 and p in last and o < last[p]:
                    backwards.append((p, last[p], o))
                if o >= 0:
                    last[p] = max(o, last.get(p, -1))
        res.check(not backwards, f"zombie: a committed offset moved backwards: {backwards[:3]}")
        zlog = tail(ez.log_path, 1 << 22)
        evidence = [w for w in ("lost", "revoked", "superseded", "not owned", "generation", "UNKNOWN_MEMBER")
                    if w.lower() in zlog.lower()]
        res.check(bool(evidence), "zombie: its log shows no sign that it noticed losing its partitions")
        v = verify(st, "zmb", zsink, zcount)
        res.judge(v, "zombie")
        res.records += zcount
        res.notes.append(f"zombie SIGSTOPped 10 s (session 3 s) then resumed; {len(samples)} samples of the committed "
                         f"offsets, none moved backwards; zombie log mentions: {', '.join(evidence)}")

