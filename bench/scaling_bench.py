#!/usr/bin/env python3
"""Scaling out: several etl-engine processes in one consumer group (`make bench-scaling`, part of
`make bench`; not a test). Results and the reading of them are in docs/scaling.md.

One run on one machine, own stack in .stack-bench-scaling/ (release etl-devbroker + moto_server).
Phases (--phases, default all):

  throughput  N records (--records, default 1,000,000; --short-messages --dense) over P partitions
              (--partitions, default 24) produced once; then 1, 2 and 3 engines, started together in
              a fresh group each, consume that same backlog into one shared file:// sink (each engine
              its own staging dir and manifest). Records/s per engine from its `run summary` line;
              total = all records / (last engine's last commit - first engine's first record).
              session_timeout --throughput-session (6 s): the dev broker holds every JoinGroup for
              half of it, so at 30 s engines that miss the first join wait 15-30 s for the next.
  join        a producer at --rate records/s into a fresh topic; engine 1 starts, engine 2 joins
              once engine 1 consumes, engine 3 once the group settled again (session_timeout 6 s,
              the dev broker holds every JoinGroup for session_timeout / 2). The pause of a join =
              first record consumed (by any engine) after the first `kafka partitions revoked` line
              minus the last record consumed before it, from the sink's ingest_time column (one
              wall-clock reading per poll), beside the log times of revocation and assignment.
  join-cooperative (not in the default list) the join phase with rebalance_protocol
              cooperative-sticky: only the moving partitions stop; their pause is the
              "moved_partitions_pause_s" (also reported for eager).
  takeover    two engines under the same producer; once both consume, kill -9 one; the takeover =
              the survivor's first record of the dead engine's partitions (min ingest_time after the
              kill) minus the kill time. Once at the default session_timeout (30 s) and once at 6 s.
              Both engines use static membership (kafka.instance_id's default).
  s3          one engine at the default batch settings over the throughput topic into moto through
              tools/s3_fault_proxy.py, which logs every request (method, query, body bytes): request
              counts by S3 operation and bytes uploaded per GB of input; staging dir peak (sampled
              every 50 ms).
  multipart   (not in the default list) the uncompressed run again with sink.part_size 5 MiB, so
              each object is a multipart upload: the request pattern of objects above part_size.
  manifest    one engine with batch.max_records = --manifest-batch-records (default 2,000) over the
              throughput topic: manifest bytes (SQLite file + WAL) and rows per committed batch.
  manifest-retention (not in the default list) the throughput topic twice more with small batches
              (--retention-batch-records, default 50), once with [manifest] retention = 0 (rows
              kept forever) and once with --retention (default 5s): the database file, the WAL
              and the rows, sampled every 0.5 s: whether the file stops growing.

tools/verify_sink.py checks exactly-once after every run; the bench stops on a failure.
Raw results: .build/scaling-bench.json; tables on stdout.

  python3 bench/scaling_bench.py [--records 1000000] [--partitions 24] [--rate 8000]
                                 [--phases throughput,join,takeover,s3,manifest] [--skip-build | --bin DIR]
"""
import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime

import benchlib

ROOT = benchlib.ROOT
TOOLS = os.path.join(ROOT, "tools")
BUCKET = "tidemark-scaling"
STACK_DIR = ".stack-bench-scaling"


def log(*a):
    print("scaling-bench:", *a, file=sys.stderr, flush=True)


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Engine:
    """One etl-engine process with its own staging dir, manifest and JSON log file."""

    def __init__(self, ctx, name, topic, group, sink_url, endpoint=None, session=None, batch=None, idle="5s",
                 sink_extra="", protocol=None, extra=""):
        self.ctx, self.name = ctx, name
        self.dir = os.path.join(ctx.work, name)
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "tidemark.toml")
        self.logfile = os.path.join(self.dir, "engine.log")
        with open(self.conf, "w") as f:
            f.write(f'[kafka]\nbrokers = "{ctx.stack.bootstrap}"\ntopics = ["{topic}"]\ngroup_id = "{group}"\n'
                    + (f'session_timeout = "{session}"\n' if session else "")
                    + (f'rebalance_protocol = "{protocol}"\n' if protocol else "")
                    + f'[sink]\nurl = "{sink_url}"\n' + (f'endpoint = "{endpoint}"\n' if endpoint else "") + sink_extra
                    + f'[staging]\ndir = "{self.dir}/staging"\nmanifest = "{self.dir}/state/manifest.sqlite"\n'
                    + (f"[batch]\n{batch}\n" if batch else "") + extra
                    + '[engine]\nlog_format = "json"\nstatus_interval = "5s"\n')
        self.idle = idle
        self.proc = None

    def start(self):
        out = open(self.logfile, "w")
        self.started = time.time()
        cmd = [os.path.join(self.ctx.binp, "etl-engine"), "--config", self.conf]
        if self.idle:
            cmd += ["--until-idle", self.idle]
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.ctx.stack.env)
        out.close()
        return self

    def wait(self, timeout=600):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            sys.exit(f"bench: {self.name} did not exit within {timeout} s; log {self.logfile}")
        return rc

    def terminate(self):
        """SIGTERM: a continuously running engine seals, commits and exits 0."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def events(self):
        out = []
        with open(self.logfile) as f:
            for line in f:
                if line.startswith("{"):
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue
                    e["t"] = ts(e["ts"])
                    out.append(e)
        return out

    def assignments(self):
        """(time, [partition]) of each `kafka partitions assigned` line."""
        return [(e["t"], [int(p) for p in re.findall(r"/(\d+)", e.get("kafka.partitions", ""))])
                for e in self.events() if e.get("msg") == "kafka partitions assigned"]

    def revocations(self):
        return [e["t"] for e in self.events() if e.get("msg") in ("kafka partitions revoked", "kafka partitions lost")]

    def summary(self):
        e = next((e for e in self.events() if e.get("msg", "").startswith("run summary")), None)
        if e is None:
            sys.exit(f"bench: {self.name} logged no run summary; log {self.logfile}")
        return e


class Producer:
    """tools/produce_logs.py at a fixed rate in the background, stopped by its PID."""

    def __init__(self, ctx, topic, rate, count=50_000_000):
        self.proc = subprocess.Popen([sys.executable, os.path.join(TOOLS, "produce_logs.py"), "--bootstrap",
                                      ctx.stack.bootstrap, "--topic", topic, "--count", str(count), "--partitions",
                                      str(ctx.args.partitions), "--short-messages", "--dense", "--rate", str(rate)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ctx.stack.env)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    sys.exit(f"bench: timed out waiting for {what}")


def verify(ctx, topic, sink, expect=None, endpoint=None):
    cmd = [sys.executable, os.path.join(TOOLS, "verify_sink.py"), "--bootstrap", ctx.stack.bootstrap,
           "--topic", topic, "--sink", sink, "--timeout", "300"]
    if expect is not None:
        cmd += ["--expect", str(expect)]
    if endpoint:
        cmd += ["--endpoint", endpoint]
    p = benchlib.run(cmd, env=ctx.stack.env, check=False)
    try:
        doc = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        doc = {"raw": p.stdout[-2000:]}
    if p.returncode != 0:
        sys.exit(f"bench: verify_sink.py: NOT exactly once for {sink}:\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}")
    log("verify_sink.py: exactly once", sink)
    return doc


def sink_rows(lake):
    """(partition, offset, ingest_time seconds) of every row under a file:// sink, sorted by time."""
    import pyarrow.parquet as pq
    rows = []
    for f in glob.glob(os.path.join(lake, "**", "*.parquet"), recursive=True):
        t = pq.read_table(f, columns=["kafka_partition", "kafka_offset", "ingest_time"])
        ing = t.column("ingest_time").cast("int64").to_pylist()
        rows += zip(t.column("kafka_partition").to_pylist(), t.column("kafka_offset").to_pylist(),
                    (x / 1e6 for x in ing))
    rows.sort(key=lambda r: r[2])
    return rows


def summary_fields(eng):
    s = eng.summary()
    if "seconds" not in s:
        return {"engine": eng.name, "records": int(s.get("records", 0)), "note": "no rate in the run summary"}
    first = eng.started + float(s.get("first_record_after_seconds", "nan"))
    secs = float(s.get("seconds", "nan"))
    return {"engine": eng.name, "records": int(s["records"]), "bytes": int(s["bytes"]), "batches": int(s["batches"]),
            "uploaded_bytes": int(s["uploaded_bytes"]), "seconds": secs, "records_per_s": int(s.get("records_per_s", 0)),
            "first_record_after_seconds": float(s.get("first_record_after_seconds", "nan")),
            "first_record_at": first, "last_commit_at": first + secs,
            "assignments": [(round(t - eng.started, 3), p) for t, p in eng.assignments()]}


# ---------------------------------------------------------------- phases

def phase_throughput(ctx):
    out = []
    for n in (1, 2, 3):
        tag = uuid.uuid4().hex[:6]
        lake = os.path.join(ctx.work, f"tp{n}-lake")
        engines = [Engine(ctx, f"tp{n}-e{i + 1}", "scale", f"tp{n}-{tag}", f"file://{lake}",
                          session=ctx.args.throughput_session) for i in range(n)]
        for e in engines:
            e.start()
        for e in engines:
            rc = e.wait()
            if rc != 0:
                sys.exit(f"bench: {e.name} exited {rc}; log {e.logfile}")
        per = [summary_fields(e) for e in engines]
        total = sum(p["records"] for p in per)
        span = max(p["last_commit_at"] for p in per) - min(p["first_record_at"] for p in per)
        v = verify(ctx, "scale", f"file://{lake}", expect=ctx.args.records)
        r = {"engines": n, "session_timeout": ctx.args.throughput_session, "per_engine": per, "total_records": total, "span_seconds": span,
             "total_records_per_s": total / span, "verify": v}
        log(f"throughput {n} engine(s):", json.dumps({k: r[k] for k in ("total_records", "span_seconds", "total_records_per_s")}),
            [(p["records"], p["records_per_s"]) for p in per])
        out.append(r)
    return out


def settled(engines, after):
    """Every running engine has had a `kafka partitions assigned` line after `after`, and no
    revocation since its last assignment. With cooperative-sticky an engine that keeps its
    partitions may get no new assignment: then the newest engine owning partitions and 3 s
    without any rebalance line count as settled."""
    newest = engines[-1].assignments()
    if newest and newest[-1][1] and newest[-1][0] > after:
        last = max([t for e in engines for t, _ in e.assignments()] + [t for e in engines for t in e.revocations()])
        if time.time() - last > 3 and all(e.assignments() for e in engines):
            return True
    for e in engines:
        a = [t for t, _ in e.assignments() if t > after]
        if not a:
            return False
        if any(t > a[-1] for t in e.revocations()):
            return False
    return True


def phase_join(ctx, protocol="eager"):
    topic, tag = f"join-{protocol}", uuid.uuid4().hex[:6]
    lake = os.path.join(ctx.work, f"{topic}-lake")
    prod = Producer(ctx, topic, ctx.args.rate)
    engines = []
    joins = []
    try:
        time.sleep(2)
        for i in range(3):
            e = Engine(ctx, f"{topic}-e{i + 1}", topic, f"{topic}-{tag}", f"file://{lake}", session="6s", idle=None,
                       protocol=protocol).start()
            engines.append(e)
            joins.append(e.started)
            wait_for(lambda: settled(engines, e.started), 120, f"the group to settle after {e.name} joined")
            time.sleep(8)
    finally:
        prod.stop()
        time.sleep(5)  # let the engines consume the last records before SIGTERM
        for e in engines:
            e.terminate()
    for e in engines:
        rc = e.wait()
        if rc != 0:
            sys.exit(f"bench: {e.name} exited {rc}; log {e.logfile}")
    rows = sink_rows(lake)
    times = [r[2] for r in rows]
    import bisect
    events = []
    # the partitions each engine got first (cooperative-sticky may first hand a new member an
    # empty assignment, then the moved partitions in a second round)
    first_assigned = [next((set(p) for _, p in e.assignments() if p), set()) for e in engines]
    by_part = {}
    for p, o, t in rows:
        by_part.setdefault(p, []).append(t)
    for k in (1, 2):
        t_join = joins[k]
        revs = [t for e in engines[:k] for t in e.revocations() if t > t_join]
        t_rev = min(revs)
        i = bisect.bisect_right(times, t_rev)
        last_before, first_after = times[i - 1], times[i]
        assigned = [(e.name, min(t for t, _ in e.assignments() if t > t_rev)) for e in engines[:k + 1]]
        moved = first_assigned[k]
        new_first = min((t for p, o, t in rows if t > t_rev and p in moved), default=None)
        moved_last = max((t for p, o, t in rows if t <= t_rev and p in moved), default=None)
        ev = {"joining": engines[k].name, "members_after": k + 1,
              "join_to_revocation_s": t_rev - t_join,
              "pause_s": first_after - last_before,
              "last_record_before_revocation_to_revocation_s": t_rev - last_before,
              "assignment_after_revocation_s": {n: t - t_rev for n, t in assigned},
              "first_record_after_revocation_s": first_after - t_rev,
              "joining_engine_first_record_after_its_start_s": (new_first - t_join) if new_first else None,
              "moved_partitions": sorted(moved),
              "moved_partitions_pause_s": (new_first - moved_last) if new_first and moved_last else None}
        # per moved partition: its longest gap between consecutive records within 60 s of the join
        per = []
        for p in moved:
            ts_p = [t for t in by_part.get(p, []) if t_join <= t <= t_join + 60]
            if len(ts_p) > 1:
                per.append(max(b - a for a, b in zip(ts_p, ts_p[1:])))
        ev["moved_partition_longest_gap_s"] = {"min": min(per), "max": max(per)} if per else None
        unmoved = [p for p in by_part if p not in moved]
        per = []
        for p in unmoved:
            ts_p = [t for t in by_part[p] if t_join <= t <= t_join + 60]
            if len(ts_p) > 1:
                per.append(max(b - a for a, b in zip(ts_p, ts_p[1:])))
        ev["other_partitions_longest_gap_s"] = {"min": min(per), "max": max(per)} if per else None
        # the longest gap between consecutive polls (any engine) within 60 s of the join
        lo, hi = bisect.bisect_left(times, t_join), bisect.bisect_right(times, t_join + 60)
        gaps = [(times[j + 1] - times[j], times[j] - t_join) for j in range(lo, max(lo, hi - 1))]
        ev["longest_gap_within_60s_s"], ev["longest_gap_starts_after_join_s"] = max(gaps) if gaps else (None, None)
        events.append(ev)
        log("join", json.dumps(ev))
    v = verify(ctx, topic, f"file://{lake}")
    return {"protocol": protocol, "rate": ctx.args.rate, "records": len(rows), "session_timeout": "6s", "events": events,
            "per_engine": [summary_fields(e) for e in engines], "verify": v}


def phase_takeover(ctx, session):
    topic = f"kill{session or 'default'}"
    tag = uuid.uuid4().hex[:6]
    lake = os.path.join(ctx.work, f"{topic}-lake")
    prod = Producer(ctx, topic, ctx.args.rate)
    try:
        time.sleep(2)
        engines = [Engine(ctx, f"{topic}-e{i + 1}", topic, f"{topic}-{tag}", f"file://{lake}", session=session,
                          idle=None).start()
                   for i in range(2)]
        start = min(e.started for e in engines)
        wait_for(lambda: settled(engines, start) and all(len(e.assignments()[-1][1]) > 0 for e in engines),
                 120, "both engines to own partitions")
        time.sleep(5)
        survivor, victim = engines
        victim_parts = victim.assignments()[-1][1]
        t_kill = time.time()
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        wait_for(lambda: any(t > t_kill and set(victim_parts) <= set(p) for t, p in survivor.assignments()),
                 180, "the survivor to take the dead engine's partitions")
        time.sleep(5)
    finally:
        prod.stop()
        time.sleep(5)  # let the engines consume the last records before SIGTERM
        for e in engines:
            e.terminate()
    rc = survivor.wait()
    if rc != 0:
        sys.exit(f"bench: {survivor.name} exited {rc}; log {survivor.logfile}")
    rows = sink_rows(lake)
    vp = set(victim_parts)
    first_after = min(t for p, o, t in rows if p in vp and t > t_kill)
    last_before = max((t for p, o, t in rows if p in vp and t <= t_kill), default=None)
    t_assign = min(t for t, p in survivor.assignments() if t > t_kill and vp <= set(p))
    revs = [t for t in survivor.revocations() if t > t_kill]
    r = {"session_timeout": session or "30s (default)", "victim_partitions": sorted(vp),
         "kill_to_survivor_revocation_s": (min(revs) - t_kill) if revs else None,
         "kill_to_survivor_assignment_s": t_assign - t_kill,
         "kill_to_first_record_of_dead_partitions_s": first_after - t_kill,
         "victim_last_committed_record_before_kill_s": (t_kill - last_before) if last_before else None,
         "records": len(rows), "survivor": summary_fields(survivor)}
    r["verify"] = verify(ctx, topic, f"file://{lake}")
    log("takeover", json.dumps({k: v for k, v in r.items() if k not in ("survivor", "verify")}))
    return r


def dir_bytes(d):
    n = 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                n += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return n


def classify(entry):
    m, q = entry["method"], entry["query"]
    if entry["path"].startswith("/__proxy__"):
        return None
    if m == "PUT":
        return "UploadPart" if "partNumber" in q else "PutObject"
    if m == "POST":
        return "CreateMultipartUpload" if "uploads" in q else ("CompleteMultipartUpload" if "uploadId" in q else "POST other")
    if m == "GET":
        return "ListObjectsV2/ListParts" if ("list-type" in q or "uploadId" in q or "prefix" in q) else "GetObject"
    if m == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
    return m  # HEAD


def phase_s3(ctx, batch=None, label="defaults", topic="scale", expect=None, sink_extra=""):
    import urllib.request
    ctx.stack.create_bucket(BUCKET) if not ctx.bucket_made else None
    ctx.bucket_made = True
    proxy = subprocess.Popen([sys.executable, os.path.join(TOOLS, "s3_fault_proxy.py"), "--upstream", ctx.stack.endpoint],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(proxy.stdout.readline().split()[1])
        purl = f"http://127.0.0.1:{port}"
        prefix = f"s3-{label}-{uuid.uuid4().hex[:6]}"
        eng = Engine(ctx, prefix, topic, prefix, f"s3://{BUCKET}/{prefix}", endpoint=purl, batch=batch,
                     sink_extra=sink_extra)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], dir_bytes(os.path.join(eng.dir, "staging")))
                time.sleep(0.05)
        th = threading.Thread(target=sample)
        th.start()
        eng.start()
        rc = eng.wait()
        done.set()
        th.join()
        if rc != 0:
            sys.exit(f"bench: {eng.name} exited {rc}; log {eng.logfile}")
        entries = json.loads(urllib.request.urlopen(f"{purl}/__proxy__/log").read())
    finally:
        proxy.terminate()
        proxy.wait()
    counts, nbytes = {}, {}
    for e in entries:
        k = classify(e)
        if k is None:
            continue
        # the start-up probe (conditional-write check) writes under its own key; count it apart
        if "_tidemark_check/" in e["path"]:
            k = "start-up probe: " + k
        counts[k] = counts.get(k, 0) + 1
        nbytes[k] = nbytes.get(k, 0) + e.get("bytes", 0)
    s = summary_fields(eng)
    v = verify(ctx, topic, f"s3://{BUCKET}/{prefix}", expect=expect or ctx.args.records, endpoint=ctx.stack.endpoint)
    r = {"label": label, "batch": batch, "topic": topic, "sink_extra": sink_extra, "summary": s, "requests": counts, "request_bytes": nbytes,
         "staging_peak_bytes": peak[0], "paths_sample": sorted({e["path"] for e in entries})[:8], "verify": v}
    log("s3", label, json.dumps({"requests": counts, "bytes": nbytes, "input_bytes": s["bytes"], "batches": s["batches"],
                                 "staging_peak": peak[0]}))
    return r


def phase_manifest(ctx):
    import sqlite3
    lake = os.path.join(ctx.work, "manifest-lake")
    tag = uuid.uuid4().hex[:6]
    eng = Engine(ctx, "manifest", "scale", f"manifest-{tag}", f"file://{lake}",
                 batch=f"max_records = {ctx.args.manifest_batch_records}").start()
    rc = eng.wait()
    if rc != 0:
        sys.exit(f"bench: manifest engine exited {rc}; log {eng.logfile}")
    state = os.path.join(eng.dir, "state")
    files = {f: os.path.getsize(os.path.join(state, f)) for f in os.listdir(state)}
    db = sqlite3.connect(os.path.join(state, "manifest.sqlite"))
    rows = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("batches", "parts", "events")}
    states = dict(db.execute("SELECT state, count(*) FROM batches GROUP BY state").fetchall())
    page = db.execute("PRAGMA page_size").fetchone()[0] * db.execute("PRAGMA page_count").fetchone()[0]
    try:
        per_table = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    except sqlite3.Error:
        per_table = None
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    after_ckpt = os.path.getsize(os.path.join(state, "manifest.sqlite"))
    v = verify(ctx, "scale", f"file://{lake}", expect=ctx.args.records)
    r = {"batch_records": ctx.args.manifest_batch_records, "files": files, "rows": rows, "states": states,
         "db_pages_bytes": page, "db_bytes_after_checkpoint": after_ckpt, "per_table_bytes": per_table,
         "bytes_per_committed_batch": after_ckpt / max(1, states.get("COMMITTED", 0)),
         "summary": summary_fields(eng), "verify": v}
    log("manifest", json.dumps({k: r[k] for k in ("files", "rows", "states", "db_bytes_after_checkpoint",
                                                 "bytes_per_committed_batch", "per_table_bytes")}))
    return r


def phase_manifest_retention(ctx):
    """The throughput topic with small batches, rows kept forever vs pruned: file sizes over time."""
    import sqlite3
    out = []
    for retention in ("0", ctx.args.retention):
        tag = uuid.uuid4().hex[:6]
        lake = os.path.join(ctx.work, f"retention-lake-{tag}")
        name = f"retention-{tag}"
        eng = Engine(ctx, name, "scale", f"retention-{tag}", f"file://{lake}",
                     batch=f"max_records = {ctx.args.retention_batch_records}\nmax_age = \"60s\"",
                     extra=f'[manifest]\nretention = "{retention}"\n', idle="6s")
        state = os.path.join(eng.dir, "state")
        db_path = os.path.join(state, "manifest.sqlite")
        samples, done = [], threading.Event()

        def sample():
            while not done.is_set():
                try:
                    db = os.path.getsize(db_path)
                    wal = os.path.getsize(db_path + "-wal") if os.path.exists(db_path + "-wal") else 0
                    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
                    rows = con.execute("SELECT count(*) FROM batches").fetchone()[0]
                    pruned = con.execute("SELECT coalesce(sum(pruned_batches), 0) FROM horizons").fetchone()[0] \
                        if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'horizons'").fetchone() else 0
                    con.close()
                    samples.append({"t": round(time.time() - eng.started, 2), "db": db, "wal": wal, "rows": rows,
                                    "batches": rows + pruned})
                except (OSError, sqlite3.Error):
                    pass
                done.wait(0.5)

        eng.start()
        th = threading.Thread(target=sample)
        th.start()
        rc = eng.wait(timeout=1800)
        done.set()
        th.join()
        if rc != 0:
            sys.exit(f"bench: {name} exited {rc}; log {eng.logfile}")
        con = sqlite3.connect(db_path)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("batches", "events")}
        freelist = con.execute("PRAGMA freelist_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
        con.close()
        v = verify(ctx, "scale", f"file://{lake}", expect=ctx.args.records)
        prunes = [e for e in eng.events() if e.get("msg") == "manifest pruned"]
        half = [x for x in samples if x["t"] >= samples[-1]["t"] / 2] if samples else []
        r = {"retention": retention, "batch_records": ctx.args.retention_batch_records, "summary": summary_fields(eng),
             "batches": max((x["batches"] for x in samples), default=0), "rows_after": rows,
             "db_bytes_after_checkpoint": os.path.getsize(db_path), "freelist_bytes_after": freelist,
             "db_bytes_max": max((x["db"] for x in samples), default=0),
             "db_bytes_at_half_time": half[0]["db"] if half else 0,
             "wal_bytes_max": max((x["wal"] for x in samples), default=0),
             "rows_max": max((x["rows"] for x in samples), default=0),
             "prune_passes": len(prunes), "prune_pass_seconds_max": max((float(str(e.get("seconds", "0")).split()[0]) for e in prunes), default=0),
             "samples": samples, "verify": v}
        log("manifest-retention", json.dumps({k: v2 for k, v2 in r.items() if k not in ("samples", "summary", "verify")}))
        out.append(r)
    return out


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=24)
    ap.add_argument("--rate", type=int, default=8000, help="producer rate of the join and takeover phases")
    ap.add_argument("--manifest-batch-records", type=int, default=1000)
    ap.add_argument("--throughput-session", default="6s",
                    help="session_timeout of the throughput runs (the dev broker holds a JoinGroup for half of it)")
    ap.add_argument("--big-records", type=int, default=1_000_000, help="records of the multipart S3 run (4 partitions)")
    ap.add_argument("--retention-batch-records", type=int, default=50)
    ap.add_argument("--retention", default="5s", help="[manifest] retention of the manifest-retention phase")
    ap.add_argument("--phases", default="throughput,join,takeover,s3,manifest")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--bin", help="use the executables in this directory")
    args = ap.parse_args()
    phases = args.phases.split(",")
    binp = args.bin or benchlib.release_binaries(args.skip_build)
    ctx = Ctx()
    ctx.args, ctx.binp, ctx.bucket_made = args, binp, False
    P = args.partitions
    topics = f"scale:{P} join-eager:{P} join-cooperative-sticky:{P} killdefault:{P} kill6s:{P} big:4"
    results = {"command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    raw = os.path.join(ROOT, ".build", "scaling-bench.json" if args.phases == ap.get_default("phases")
                       else f"scaling-bench-{args.phases.replace(',', '-')}.json")
    os.makedirs(os.path.dirname(raw), exist_ok=True)
    with benchlib.local_stack(STACK_DIR, topics, binp) as stack, \
            tempfile.TemporaryDirectory(prefix="scaling-bench-", ignore_cleanup_errors=True) as work:
        ctx.stack, ctx.work = stack, work
        if any(p in phases for p in ("throughput", "s3", "manifest", "manifest-retention")):
            log(f"producing {args.records:,} records over {P} partitions")
            benchlib.run([sys.executable, os.path.join(TOOLS, "produce_logs.py"), "--bootstrap", stack.bootstrap,
                          "--topic", "scale", "--count", str(args.records), "--partitions", str(P),
                          "--short-messages", "--dense"], env=stack.env)
        try:
            if "throughput" in phases:
                results["throughput"] = phase_throughput(ctx)
            if "join" in phases:
                results["join"] = phase_join(ctx)
            if "join-cooperative" in phases:
                results["join-cooperative"] = phase_join(ctx, "cooperative-sticky")
            if "takeover" in phases:
                results["takeover"] = [phase_takeover(ctx, "6s"), phase_takeover(ctx, None)]
            if "s3" in phases:
                results["s3"] = [phase_s3(ctx), phase_s3(ctx, "max_records = 25000", "max_records 25000")]
                # Objects above the default 16 MiB part size (multipart): uncompressed Parquet of
                # --big-records records over 4 partitions (the dev broker stores them zstd-compressed).
                log(f"producing {args.big_records:,} records over 4 partitions")
                benchlib.run([sys.executable, os.path.join(TOOLS, "produce_logs.py"), "--bootstrap", stack.bootstrap,
                              "--topic", "big", "--count", str(args.big_records), "--partitions", "4",
                              "--short-messages", "--dense"], env=stack.env)
                results["s3"].append(phase_s3(ctx, None, "compression none, 4 partitions", topic="big",
                                              expect=args.big_records, sink_extra='compression = "none"\n'))
            if "multipart" in phases:
                # The multipart path: the same uncompressed objects (~5.7 MB each) with the
                # smallest part size S3 allows, so each one is a multipart upload of 2 parts.
                if "s3" not in phases:
                    benchlib.run([sys.executable, os.path.join(TOOLS, "produce_logs.py"), "--bootstrap", stack.bootstrap,
                                  "--topic", "big", "--count", str(args.big_records), "--partitions", "4",
                                  "--short-messages", "--dense"], env=stack.env)
                results["multipart"] = phase_s3(ctx, None, "compression none, part_size 5MiB", topic="big",
                                                expect=args.big_records,
                                                sink_extra='compression = "none"\npart_size = "5MiB"\n')
            if "manifest" in phases:
                results["manifest"] = phase_manifest(ctx)
            if "manifest-retention" in phases:
                results["manifest-retention"] = phase_manifest_retention(ctx)
        finally:
            json.dump(results, open(raw, "w"), indent=1, default=str)
            log(f"raw results in {raw}")


if __name__ == "__main__":
    main()
