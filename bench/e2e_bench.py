#!/usr/bin/env python3
"""End-to-end benchmark (`make bench-e2e`, part of `make bench`; not a test).

In one run on one machine: brings up its own local stack (release etl-devbroker + moto_server,
state in .stack-bench/), produces N log records once (confluent-kafka, zstd), then measures,
each --runs times (median quoted):

  limits   kcat -C -e consume rate of the topic; parquet-bench encode rate of the same rows
           (ZSTD 3, to /dev/shm); S3 ingest of a 256 MiB object to the same moto (objectstore-bench,
           16 MiB parts, 4 in flight = the engine's defaults); FileStore ingest of the same file;
           SHA-256 (Python hashlib / OpenSSL) of 256 MiB in memory
  peer     bench/peer_pipeline.py: confluent-kafka -> pyarrow ZSTD(3) -> boto3 multipart -> commit
  engine   etl-engine --until-idle to moto and to file://, same batch size as the peer; its
           "run summary" log line gives first record consumed -> last offset committed;
           /usr/bin/time gives peak RSS and CPU seconds; tools/verify_sink.py checks every
           run's sink (exactly once) or the bench stops

Prints one table and writes it, with date, machine, versions and commands, into
docs/benchmarks.md between the "e2e-bench" markers (--no-write to skip).

  python3 bench/e2e_bench.py [--records 2000000] [--partitions 32] [--runs 3]
                             [--batch-records 25000] [--skip-build] [--no-write] [--wall-only [--zero-delay]]

--wall-only --zero-delay runs the wall-clock comparison on bench/zero_delay_broker.py (librdkafka
2.16's mock cluster with the initial group join delay set to 0, as a Kafka broker with
`group.initial.rebalance.delay.ms=0`) instead of the dev broker, whose 3 s first-join delay both
pipelines otherwise pay inside their wall clock; moto still comes from the local stack.

Partitions: the dev broker (librdkafka 2.0.2's mock cluster) keeps at most 5 MiB of stored
bytes and 100,000 message sets per partition (docs/compat.md). 2,000,000 compressed records
over 16 partitions lost their oldest ~337,000 to that, so the default is 32; the issue asks for 4.
Nothing else here depends on the partition count.
"""
import argparse
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import benchlib

ROOT = benchlib.ROOT
# The peer and the engine runs read the moto credentials from the environment.
ENV = dict(os.environ, **benchlib.AWS_TEST_ENV)
BUCKET = "tidemark-bench"
run = functools.partial(benchlib.run, env=ENV)


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs)


def limits(args, bootstrap, endpoint, work, binp, total_bytes):
    out = {}
    # kcat: group-less consumer from the beginning, exits at the end of every partition.
    secs = [timed_kcat(bootstrap, args.topic) for _ in range(args.runs)]
    out["kcat"] = {"seconds": median(secs), "records_per_s": args.records / median(secs),
                   "mb_per_s": total_bytes / median(secs) / 1e6, "runs": secs}
    log("kcat", out["kcat"])
    # Parquet encode of the same rows with our writer (parquet-bench), to tmpfs, with the
    # engine's column encodings.
    enc = []
    for _ in range(args.runs):
        if os.path.exists("/dev/shm/tidemark-bench.parquet"):
            os.unlink("/dev/shm/tidemark-bench.parquet")
        r = json.loads(run([os.path.join(binp, "parquet-bench"), "--input", os.path.join(work, "rows.bin"),
                            "--output", "/dev/shm/tidemark-bench.parquet", "--engine-encodings"]
                           ).stdout.strip().splitlines()[-1])
        enc.append(r)
    os.unlink("/dev/shm/tidemark-bench.parquet")
    s = median([r["seconds"] for r in enc])
    out["encode"] = {"seconds": s, "records_per_s": args.records / s, "mb_per_s": total_bytes / s / 1e6,
                     "runs": [r["seconds"] for r in enc]}
    log("encode", out["encode"])
    # S3 ingest (moto) and FileStore ingest of a 256 MiB file with the engine's part settings.
    blob = os.path.join(work, "blob.bin")
    with open(blob, "wb") as f:
        f.write(os.urandom(256 << 20))
    for name, loc, extra in (("s3_ingest", f"s3://{BUCKET}/limit", ["--endpoint", endpoint]),
                             ("file_ingest", f"file://{work}/limit-store", [])):
        mbs = []
        for _ in range(args.runs):
            line = run([os.path.join(binp, "objectstore-bench"), "--location", loc, "--file", blob,
                        "--part-mib", "16", "--inflight", "4"] + extra).stdout
            m = re.search(r"MB/s=\s*([0-9.]+)", line)
            if not m:
                sys.exit(f"bench: cannot read objectstore-bench output: {line}")
            mbs.append(float(m.group(1)))
        out[name] = {"mb_per_s": median(mbs), "runs": mbs}
        log(name, out[name])
    # SHA-256 of 256 MiB in memory.
    data = open(blob, "rb").read()
    shas = []
    for _ in range(args.runs):
        t = time.perf_counter()
        hashlib.sha256(data).digest()
        shas.append(len(data) / (time.perf_counter() - t) / 1e6)
    out["sha256"] = {"mb_per_s": median(shas), "runs": shas}
    log("sha256", out["sha256"])
    os.unlink(blob)
    # Parsing: parse-bench's seed-text rate (the engine's default format), one core.
    rates = []
    for _ in range(args.runs):
        lines = run([os.path.join(binp, "parse-bench"), "--runs", "1", "--json"]).stdout.splitlines()
        seed = next((json.loads(l) for l in lines if l.startswith("{") and '"seed text"' in l), None)
        if not seed:
            sys.exit(f"bench: no seed-text line in parse-bench output: {lines[-5:]}")
        rates.append(seed["records_per_s"])
    out["parse"] = {"records_per_s": median(rates), "runs": rates}
    log("parse", out["parse"])
    return out


def timed_kcat(bootstrap, topic):
    t = time.perf_counter()
    subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-q"],
                   stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def dump_rows(args, bootstrap, work):
    """Reads the topic once with kcat and writes parquet-bench's input (the same rows the
    pipelines will encode) with bench/parquet_bench.py's serialiser. Returns total value bytes."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import parquet_bench  # noqa: E402
    import pyarrow as pa
    import pyarrow.compute as pc
    raw = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", args.topic, "-e", "-o", "beginning", "-q",
                          "-f", "%p %o %s\n"], capture_output=True, check=True).stdout
    parts, offsets, serial, times, level, msg = [], [], [], [], [], []
    total = 0
    for line in raw.split(b"\n"):
        if not line:
            continue
        p, o, value = line.split(b" ", 2)
        total += len(value)
        f = value.decode().split(" ", 3)
        parts.append(int(p)); offsets.append(int(o)); serial.append(int(f[0]))
        times.append(f[1]); level.append(f[2]); msg.append(f[3])
    if len(parts) != args.records:
        sys.exit(f"bench: kcat read {len(parts)} records, expected {args.records} (broker retention?)")
    ev = pc.cast(pa.array(times), pa.timestamp("us", tz="UTC"))
    table = pa.table({
        "serial": pa.array(serial, pa.int64()),
        "event_time": ev,
        "level": pa.array(level, pa.string()),
        "message": pa.array(msg, pa.string()),
        "kafka_topic": pa.array([args.topic] * len(parts), pa.string()),
        "kafka_partition": pa.array(parts, pa.int32()),
        "kafka_offset": pa.array(offsets, pa.int64()),
        "ingest_time": ev,
    })
    parquet_bench.write_input(table, os.path.join(work, "rows.bin"))
    return total


def engine_run(args, bootstrap, endpoint, work, binp, sink, n, defaults=False):
    run_dir = os.path.join(work, f"engine-{sink}-{n}")
    os.makedirs(run_dir)
    tag = uuid.uuid4().hex[:8]
    url = f"s3://{BUCKET}/engine-{tag}" if sink == "s3" else f"file://{run_dir}/lake"
    batch = "" if defaults else f"[batch]\nmax_records = {args.batch_records}\n"
    conf = os.path.join(run_dir, "tidemark.toml")
    with open(conf, "w") as f:
        f.write(f'[kafka]\nbrokers = "{bootstrap}"\ntopics = ["{args.topic}"]\ngroup_id = "engine-{tag}"\n'
                f'[sink]\nurl = "{url}"\n' + (f'endpoint = "{endpoint}"\n' if sink == "s3" else "") +
                f'[staging]\ndir = "{run_dir}/staging"\nmanifest = "{run_dir}/state/manifest.sqlite"\n' + batch +
                '[engine]\nstatus_interval = "5s"\n')
    p = run(["/usr/bin/time", "-f", "TIME %e %U %S %M", os.path.join(binp, "etl-engine"), "--config", conf,
             "--until-idle", "3s"])
    summary = next((l for l in p.stderr.splitlines() if "run summary" in l), None)
    t = next((l for l in p.stderr.splitlines() if l.startswith("TIME ")), None)
    if not summary or not t:
        sys.exit(f"bench: engine output lacks a run summary:\n{p.stderr[-3000:]}")
    kv = dict(re.findall(r"(\w+)=(\S+)", summary))
    if int(kv["records"]) != args.records:
        sys.exit(f"bench: engine consumed {kv['records']} records, expected {args.records}")
    # Every benchmark run must also be exactly once, judged by reading the sink back.
    v = run([sys.executable, os.path.join(ROOT, "tools/verify_sink.py"), "--bootstrap", bootstrap, "--topic", args.topic,
             "--sink", url, "--expect", str(args.records)] + (["--endpoint", endpoint] if sink == "s3" else []), check=False)
    if v.returncode != 0:
        sys.exit(f"bench: verify_sink.py found the {sink} run not exactly once:\n{v.stdout[-3000:]}\n{v.stderr[-2000:]}")
    _, wall, user, sys_, rss = t.split()
    r = {"seconds": float(kv["seconds"]), "wall_seconds": float(kv["wall_seconds"]),
         "records_per_s": args.records / float(kv["seconds"]),
         "wall_records_per_s": args.records / float(kv["wall_seconds"]),
         "uploaded_bytes": int(kv["uploaded_bytes"]), "batches": int(kv["batches"]),
         "peak_rss_mib": int(rss) / 1024, "cpu_seconds": float(user) + float(sys_),
         "process_seconds": float(wall),
         "exactly_once": True,
         "stages": {k: float(v) for k, v in kv.items()
                    if k.startswith("stage_") or k.startswith("poll_thread_") or k.startswith("encoder_")
                    or k == "tail_seconds"}}
    shutil.rmtree(run_dir, ignore_errors=True)
    return r


def peer_run(args, bootstrap, endpoint):
    tag = uuid.uuid4().hex[:8]
    p = run(["/usr/bin/time", "-f", "TIME %e %U %S %M", sys.executable, os.path.join(ROOT, "bench/peer_pipeline.py"),
             "--bootstrap", bootstrap, "--topic", args.topic, "--group", f"peer-{tag}", "--endpoint", endpoint,
             "--bucket", BUCKET, "--prefix", f"peer-{tag}", "--expect", str(args.records),
             "--batch-records", str(args.batch_records)])
    r = json.loads(p.stdout.strip().splitlines()[-1])
    t = next(l for l in p.stderr.splitlines() if l.startswith("TIME "))
    _, wall, user, sys_, rss = t.split()
    r["peak_rss_mib"] = int(rss) / 1024
    r["cpu_seconds"] = float(user) + float(sys_)
    return r


def versions():
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except Exception:
            return "?"
    import confluent_kafka, pyarrow, boto3  # noqa: E401
    return {
        "swift": out(["swift", "--version"]),
        "librdkafka (engine)": out(["pkg-config", "--modversion", "rdkafka"]),
        "kcat": next((l.split(" (")[0] for l in subprocess.run(["kcat", "-V"], capture_output=True, text=True)
                      .stdout.splitlines() if l.startswith("Version")), "?"),
        "confluent-kafka (peer)": f"{confluent_kafka.version()[0]} (librdkafka {confluent_kafka.libversion()[0]})",
        "pyarrow": pyarrow.__version__, "boto3": boto3.__version__,
        "moto": out([sys.executable, "-c", "import moto; print(moto.__version__)"]),
    }


def machine():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
    return f"{os.cpu_count()} cores ({model}), {int(mem) // 1048576} GiB, {platform.platform()}"


def render(args, total_bytes, lim, peer, eng, engdef):
    mb = total_bytes / 1e6
    rec = lambda x: f"{x / 1000:,.0f}k"  # noqa: E731
    per_rec_out = median([e["uploaded_bytes"] for e in eng["s3"]]) / args.records
    s3_rec = lim["s3_ingest"]["mb_per_s"] * 1e6 / per_rec_out
    file_rec = lim["file_ingest"]["mb_per_s"] * 1e6 / per_rec_out
    sha_rec = lim["sha256"]["mb_per_s"] * 1e6 / per_rec_out
    rows = [
        ("limit: kcat consume", lim["kcat"]["records_per_s"], lim["kcat"]["mb_per_s"], ""),
        ("limit: Parquet encode (parquet-bench --engine-encodings, ZSTD 3)", lim["encode"]["records_per_s"], lim["encode"]["mb_per_s"], ""),
        ("limit: S3 ingest (moto, 256 MiB object)", s3_rec, lim["s3_ingest"]["mb_per_s"],
         f"{lim['s3_ingest']['mb_per_s']:.0f} MB/s of Parquet at {per_rec_out:.1f} B/record"),
        ("limit: FileStore ingest (256 MiB)", file_rec, lim["file_ingest"]["mb_per_s"], "of Parquet"),
        ("limit: SHA-256", sha_rec, lim["sha256"]["mb_per_s"], "of Parquet"),
    ]
    med = lambda runs, k: median([r[k] for r in runs])  # noqa: E731
    slow_s3 = min(lim["kcat"]["records_per_s"], lim["encode"]["records_per_s"], s3_rec, sha_rec)
    slow_file = min(lim["kcat"]["records_per_s"], lim["encode"]["records_per_s"], file_rec, sha_rec)
    peer_rps, peer_wall = med(peer, "records_per_s"), med(peer, "wall_records_per_s")
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {args.records:,} records "
        f"({mb:.0f} MB of log lines) over {args.partitions} partitions, batches of {args.batch_records:,} "
        f"records, median of {args.runs} runs.",
        "",
        "| stage | records/s | MB/s | note |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, rps, mbs, note in rows:
        lines.append(f"| {name} | {rec(rps)} | {mbs:.1f} | {note} |")
    lines.append(f"| peer: confluent-kafka + pyarrow + boto3 → moto | {rec(peer_rps)} | "
                 f"{med(peer, 'mb_per_s'):.1f} | wall (incl. start, group join): {rec(peer_wall)}/s; "
                 f"peak RSS {med(peer, 'peak_rss_mib'):.0f} MiB; "
                 f"{med(peer, 'cpu_seconds') / (mb / 1000):.1f} CPU s/GB |")
    for sink, slow in (("s3", slow_s3), ("file", slow_file)):
        e = eng[sink]
        rps = med(e, "records_per_s")
        ratio_peer = f"; {rps / peer_rps:.2f}x peer, wall {med(e, 'wall_records_per_s') / peer_wall:.2f}x peer" if sink == "s3" else ""
        lines.append(f"| engine → {'moto' if sink == 's3' else 'file://'} | {rec(rps)} | "
                     f"{rps * total_bytes / args.records / 1e6:.1f} | {rps / slow:.0%} of slowest limit{ratio_peer}; "
                     f"wall {rec(med(e, 'wall_records_per_s'))}/s; peak RSS {med(e, 'peak_rss_mib'):.0f} MiB; "
                     f"{med(e, 'cpu_seconds') / (mb / 1000):.1f} CPU s/GB |")
    lines.append(f"| engine → file://, default settings (max_records 500,000) | "
                 f"{rec(engdef['records_per_s'])} | {engdef['records_per_s'] * total_bytes / args.records / 1e6:.1f} | "
                 f"peak RSS {engdef['peak_rss_mib']:.0f} MiB (one run) |")
    lines += ["", "Every engine run here was exactly once: tools/verify_sink.py read each sink back (pyarrow, DuckDB) "
              "against the topic."]
    e = eng["s3"][len(eng["s3"]) // 2]
    lines += ["", "Stage split of the median-numbered engine → moto run (seconds of thread time from its run summary; "
              "the poll thread's idle time includes the ~3 s group join and the 3 s idle wait before exit; upload "
              "workers overlap each other and the poll thread):", ""]
    lines.append("| " + " | ".join(e["stages"]) + " |")
    lines.append("|" + " ---: |" * len(e["stages"]))
    lines.append("| " + " | ".join(f"{v:.2f}" for v in e["stages"].values()) + " |")
    return "\n".join(lines)


def render_wall(args, peer, eng):
    """The wall-clock comparison (process start to exit, group join included) over a larger topic."""
    med = lambda runs, k: median([r[k] for r in runs])  # noqa: E731
    rec = lambda x: f"{x / 1000:,.0f}k"  # noqa: E731
    pw, ew = med(peer, "wall_records_per_s"), med(eng, "wall_records_per_s")
    ps, es = med(peer, "records_per_s"), med(eng, "records_per_s")
    return "\n".join([
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {args.records:,} records over "
        f"{args.partitions} partitions, batches of {args.batch_records:,} records, both to moto, median of "
        f"{args.runs} runs, Kafka from "
        + ("bench/zero_delay_broker.py (no initial group join delay)" if args.zero_delay else
           "the dev broker (3 s initial group join delay)")
        + ". Wall = process start to the last offset commit (start-up and the group join "
        f"included); steady state = first record consumed to the last offset commit.",
        "",
        "| pipeline | wall records/s | steady-state records/s | peak RSS MiB |",
        "| --- | ---: | ---: | ---: |",
        f"| peer: confluent-kafka + pyarrow + boto3 | {rec(pw)} | {rec(ps)} | {med(peer, 'peak_rss_mib'):.0f} |",
        f"| etl-engine | {rec(ew)} | {rec(es)} | {med(eng, 'peak_rss_mib'):.0f} |",
        f"| ratio engine / peer | {ew / pw:.2f}x | {es / ps:.2f}x | |",
        "",
        "Every engine run here was exactly once (tools/verify_sink.py).",
    ])


def write_doc(text, args):
    path = os.path.join(ROOT, "docs/benchmarks.md")
    doc = open(path).read()
    marker = ("e2e-wall-zero-delay" if args.zero_delay else "e2e-wall") if args.wall_only else "e2e-bench"
    cmd = (f"python3 bench/e2e_bench.py --records {args.records} --partitions {args.partitions} "
           f"--runs {args.runs} --batch-records {args.batch_records}" + (" --wall-only" if args.wall_only else "")
           + (" --zero-delay" if args.zero_delay else ""))
    block = (f"<!-- {marker}:start (written by bench/e2e_bench.py; edits here are overwritten) -->\n"
             f"Command: `{cmd}` (`make bench-e2e`).\n\nMachine: {machine()}.\n\nVersions: " +
             "; ".join(f"{k} {v}" for k, v in versions().items()) + ".\n\n" + text + f"\n<!-- {marker}:end -->")
    m = re.search(rf"<!-- {marker}:start.*?<!-- {marker}:end -->", doc, re.S)
    heading = ("### Wall clock on a broker without the initial join delay" if args.zero_delay else
               "### Wall clock over a larger topic") if args.wall_only else "## End to end (make bench-e2e)"
    doc = doc[:m.start()] + block + doc[m.end():] if m else doc.rstrip() + f"\n\n{heading}\n\n" + block + "\n"
    open(path, "w").write(doc)
    log("wrote docs/benchmarks.md")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch-records", type=int, default=25_000)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="print the table; leave docs/benchmarks.md alone")
    ap.add_argument("--wall-only", action="store_true",
                    help="only the peer and the engine to moto, for the wall-clock comparison (no limits, no file://)")
    ap.add_argument("--zero-delay", action="store_true",
                    help="with --wall-only: Kafka from bench/zero_delay_broker.py (no initial group join delay)")
    args = ap.parse_args()
    if args.zero_delay and not args.wall_only:
        ap.error("--zero-delay needs --wall-only")
    args.topic = "bench"
    log("building release" if not args.skip_build else "release binaries")
    binp = benchlib.release_binaries(args.skip_build)
    with benchlib.local_stack(".stack-bench", f"{args.topic}:{args.partitions}", binp) as stack, \
            tempfile.TemporaryDirectory(prefix="tidemark-bench-", ignore_cleanup_errors=True) as work:
        if args.zero_delay:
            with benchlib.zero_delay_broker(f"{args.topic}:{args.partitions}") as bootstrap:
                measure(args, stack, work, binp, bootstrap)
        else:
            measure(args, stack, work, binp, stack.bootstrap)


def measure(args, stack, work, binp, bootstrap):
    endpoint = stack.endpoint
    stack.create_bucket(BUCKET)
    log(f"producing {args.records:,} records over {args.partitions} partitions to {bootstrap}")
    benchlib.produce(bootstrap, args.topic, args.records, args.partitions, partition_major=True, env=stack.env)
    if args.wall_only:
        peer, eng = [], []
        for i in range(args.runs):
            peer.append(peer_run(args, bootstrap, endpoint))
            log("peer", peer[-1])
            eng.append(engine_run(args, bootstrap, endpoint, work, binp, "s3", i))
            log("engine", eng[-1])
        text = render_wall(args, peer, eng)
        print(text)
        raw = os.path.join(ROOT, ".build", "e2e-wall-zero-delay.json" if args.zero_delay else "e2e-wall.json")
        os.makedirs(os.path.dirname(raw), exist_ok=True)
        json.dump({"records": args.records, "partitions": args.partitions, "zero_delay": args.zero_delay,
                   "measured": time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), "peer": peer, "engine": eng},
                  open(raw, "w"), indent=1)
        log(f"raw results in {raw}")
        if not args.no_write:
            write_doc(text, args)
        return
    total_bytes = dump_rows(args, bootstrap, work)
    log(f"topic holds {args.records:,} records, {total_bytes / 1e6:.0f} MB of values")
    lim = limits(args, bootstrap, endpoint, work, binp, total_bytes)
    peer, eng = [], {"s3": [], "file": []}
    for i in range(args.runs):
        peer.append(peer_run(args, bootstrap, endpoint))
        log("peer", peer[-1])
        for sink in ("s3", "file"):
            eng[sink].append(engine_run(args, bootstrap, endpoint, work, binp, sink, i))
            log("engine", sink, eng[sink][-1])
    engdef = engine_run(args, bootstrap, endpoint, work, binp, "file", 99, defaults=True)
    log("engine defaults", engdef)
    text = render(args, total_bytes, lim, peer, eng, engdef)
    print(text)
    raw = os.path.join(ROOT, ".build", "e2e-bench.json")
    os.makedirs(os.path.dirname(raw), exist_ok=True)
    json.dump({"records": args.records, "partitions": args.partitions, "total_bytes": total_bytes,
               "measured": time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
               "limits": lim, "peer": peer, "engine": eng, "engine_defaults": engdef}, open(raw, "w"), indent=1)
    log(f"raw results in {raw}")
    if not args.no_write:
        write_doc(text, args)


if __name__ == "__main__":
    main()
