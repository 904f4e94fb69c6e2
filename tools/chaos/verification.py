"""Reading the outcome back with tools that are not the engine's: verify_sink.py (every Kafka
offset exactly once), confluent-kafka (committed offsets, watermarks, lag), pyarrow (offsets
delivered to the sink), read-only SQLite (the manifest), and the engine's own log lines."""
import collections
import json
import os
import re
import sys

from .processes import run_capture


def verify(stack, topic, sink, expect, extra=()):
    ctx = stack.ctx
    argv = [sys.executable, os.path.join(ctx.tools, "verify_sink.py"), "--bootstrap", stack.bootstrap, f"--topic={topic}",
            "--sink", sink, "--expect", str(expect), *extra]
    if sink.startswith("s3://"):
        argv += ["--endpoint", stack.s3]
    rc, out, err = run_capture(ctx.procs, "verify_sink", argv, env=ctx.aws_env, timeout=900)
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


def kill_after_assignment(ctx, res, dep, rng, lo, hi, k):
    """Starts the engine, waits until it logs its first assignment (a kill before that only
    exercises the group join), sleeps a seeded uniform(lo, hi) seconds and kills it -9. Returns
    False when the engine exited by itself first (recorded as a failure)."""
    import time
    from .processes import tail
    e = dep.start_engine()
    deadline = time.time() + 30
    while time.time() < deadline and e.poll() is None and "partition assigned" not in tail(e.log_path, 1 << 20):
        time.sleep(0.1)
    time.sleep(rng.uniform(lo, hi))
    if e.poll() is not None:
        res.check(False, f"engine exited by itself (rc {e.returncode}) before kill {k + 1}: {tail(e.log_path, 800)}")
        ctx.procs.forget(e)
        return False
    ctx.procs.kill9(e)
    res.faults += 1
    res.runs += 1
    return True
