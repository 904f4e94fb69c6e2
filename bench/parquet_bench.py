#!/usr/bin/env python3
"""Parquet encode benchmark: Swift ParquetWriter vs pyarrow on the same rows and settings.

Generates N log records (serial int64, event_time timestamp, level string of 4 values,
message string of 60-120 chars, kafka_topic, kafka_partition, kafka_offset, ingest_time),
then encodes them to a ZSTD(3) Parquet file with the Swift `parquet-bench` executable (release
build) and with pyarrow's writer, each in its own process, several runs each. Prints a table
and ends with one line `ratio swift/pyarrow: X.XX` (median encode throughput, Swift / pyarrow).

  python3 bench/parquet_bench.py [--rows 1000000] [--runs 3] [--skip-build]

Timing covers encoding and writing the file (no fsync), not input generation or loading.
Both writers use their defaults apart from ZSTD level 3; pyarrow's are: dictionary on with a
1 MiB dictionary page limit, 1 MiB data pages, statistics on, one row group per 1Mi rows.
"""
import argparse
import json
import os
import random
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORDS = ("request user session cache miss hit timeout retry upstream downstream payload "
         "accepted rejected queued flushed committed offset partition broker latency "
         "checksum segment replica leader follower compaction snapshot manifest").split()


def generate(rows, seed=20261126):
    import numpy as np
    import pyarrow as pa
    rng = random.Random(seed)
    levels = ["DEBUG", "INFO", "WARN", "ERROR"]
    level_weights = [0.2, 0.6, 0.15, 0.05]
    base = 1_764_000_000_000_000
    serial = np.arange(rows, dtype=np.int64)
    event = base + serial * 1_000 + np.array([rng.randrange(0, 500) for _ in range(rows)], dtype=np.int64)
    ingest = event + np.array([rng.randrange(1_000, 2_000_000) for _ in range(rows)], dtype=np.int64)
    level = rng.choices(levels, weights=level_weights, k=rows)
    messages = []
    for i in range(rows):
        target = rng.randrange(60, 121)
        parts = [f"{rng.choice(WORDS)}"]
        n = len(parts[0])
        while n < target:
            w = rng.choice(WORDS) if rng.random() < 0.7 else str(rng.randrange(0, 1_000_000))
            parts.append(w)
            n += len(w) + 1
        messages.append(" ".join(parts)[:target])
    table = pa.table({
        "serial": pa.array(serial, pa.int64()),
        "event_time": pa.array(event, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "level": pa.array(level, pa.string()),
        "message": pa.array(messages, pa.string()),
        "kafka_topic": pa.array(["app-logs"] * rows, pa.string()),
        "kafka_partition": pa.array(np.full(rows, 7, dtype=np.int32), pa.int32()),
        "kafka_offset": pa.array(serial + 5_000_000, pa.int64()),
        "ingest_time": pa.array(ingest, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    })
    return table


def input_bytes(table):
    """Raw size of the values: 8 per int64/timestamp, 4 per int32, UTF-8 bytes of strings."""
    import pyarrow.compute as pc
    total = 0
    for col in table.columns:
        if col.type == "string":
            total += pc.sum(pc.binary_length(col)).as_py()
        else:
            total += col.type.bit_width // 8 * len(col)
    return total


def write_input(table, path):
    """Serialises the table in parquet-bench's input format (see Sources/parquet-bench/main.swift)."""
    import pyarrow as pa
    with open(path, "wb") as f:
        f.write(b"TMBENCH1")
        f.write(struct.pack("<Q", table.num_rows))
        for col in table.columns:
            arr = col.combine_chunks()
            if pa.types.is_string(arr.type):
                bufs = arr.buffers()
                offsets = bufs[1].to_pybytes()[: (len(arr) + 1) * 4]
                first = struct.unpack_from("<i", offsets, 0)[0]
                assert first == 0
                last = struct.unpack_from("<i", offsets, len(arr) * 4)[0]
                data = bufs[2].to_pybytes()[:last]
                f.write(struct.pack("<Q", len(offsets)))
                f.write(offsets)
                f.write(struct.pack("<Q", len(data)))
                f.write(data)
            else:
                if pa.types.is_timestamp(arr.type):
                    arr = arr.cast(pa.int64())
                raw = arr.buffers()[1].to_pybytes()[: len(arr) * (arr.type.bit_width // 8)]
                f.write(struct.pack("<Q", len(raw)))
                f.write(raw)


PYARROW_CHILD = r"""
import json, os, resource, sys, time
import pyarrow.parquet as pq
import pyarrow as pa
src, out, level = sys.argv[1], sys.argv[2], int(sys.argv[3])
table = pa.ipc.open_file(pa.memory_map(src)).read_all()
table = pa.table({n: table.column(n).combine_chunks() for n in table.column_names})
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
def rss():
    return status("VmRSS:")
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
before = rss()
cpu0 = cpu()
t0 = time.perf_counter()
pq.write_table(table, out, compression="zstd", compression_level=level)
seconds = time.perf_counter() - t0
cpu_seconds = cpu() - cpu0
md = pq.ParquetFile(out).metadata
print(json.dumps({"rows": table.num_rows, "row_groups": md.num_row_groups, "seconds": seconds,
                  "cpu_seconds": cpu_seconds,
                  "output_bytes": os.path.getsize(out), "rss_before_kib": before,
                  "peak_rss_kib": status("VmHWM:")}))
"""


def run_json(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--level", type=int, default=3)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--small-row-group-mib", type=int, default=16,
                    help="also run Swift once with this row-group budget, to show memory follows the row group")
    args = ap.parse_args()
    runs = max(args.runs, 3)

    if not args.skip_build:
        subprocess.run(["swift", "build", "-c", "release", "--product", "parquet-bench"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    binary = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip() + "/parquet-bench"

    import pyarrow as pa
    with tempfile.TemporaryDirectory(prefix="parquet-bench-") as tmp:
        t0 = time.perf_counter()
        table = generate(args.rows)
        raw_bytes = input_bytes(table)
        swift_input = os.path.join(tmp, "input.bin")
        write_input(table, swift_input)
        arrow_input = os.path.join(tmp, "input.arrow")
        with pa.OSFile(arrow_input, "wb") as sink:
            with pa.ipc.new_file(sink, table.schema) as w:
                w.write_table(table)
        del table
        small = None
        print(f"generated {args.rows:,} rows ({raw_bytes / 1e6:.1f} MB of values) in {time.perf_counter() - t0:.1f}s")

        results = {"swift": [], "pyarrow": []}
        for i in range(runs):
            # Alternate the writers so machine noise hits both alike.
            out = os.path.join(tmp, f"swift-{i}.parquet")
            results["swift"].append(run_json([binary, "--input", swift_input, "--output", out,
                                              "--level", str(args.level)]))
            os.remove(out)
            out = os.path.join(tmp, f"pyarrow-{i}.parquet")
            results["pyarrow"].append(run_json([sys.executable, "-c", PYARROW_CHILD, arrow_input, out,
                                                str(args.level)]))
            os.remove(out)
        if args.small_row_group_mib:
            out = os.path.join(tmp, "swift-small.parquet")
            small = run_json([binary, "--input", swift_input, "--output", out, "--level", str(args.level),
                              "--row-group-max-bytes", str(args.small_row_group_mib << 20)])
            os.remove(out)

    print()
    print(f"{'writer':<8} {'run':>3} {'seconds':>8} {'cpu s':>6} {'rows/s':>12} {'MB/s in':>8} {'out MB':>8} "
          f"{'row grp':>7} {'RSS base MiB':>12} {'peak MiB':>9} {'peak-base':>9}")
    medians = {}
    for name, rs in results.items():
        for i, r in enumerate(rs):
            print(f"{name:<8} {i:>3} {r['seconds']:>8.3f} {r['cpu_seconds']:>6.2f} {r['rows'] / r['seconds']:>12,.0f} "
                  f"{raw_bytes / r['seconds'] / 1e6:>8.1f} {r['output_bytes'] / 1e6:>8.2f} {r['row_groups']:>7} "
                  f"{r['rss_before_kib'] / 1024:>12.1f} {r['peak_rss_kib'] / 1024:>9.1f} "
                  f"{(r['peak_rss_kib'] - r['rss_before_kib']) / 1024:>9.1f}")
        sec = statistics.median(r["seconds"] for r in rs)
        medians[name] = {
            "seconds": sec,
            "rows_per_s": rs[0]["rows"] / sec,
            "output_bytes": statistics.median(r["output_bytes"] for r in rs),
            "writer_rss_mib": statistics.median((r["peak_rss_kib"] - r["rss_before_kib"]) / 1024 for r in rs),
        }
    print()
    for name, m in medians.items():
        print(f"median {name:<8} {m['seconds']:.3f} s  {m['rows_per_s']:,.0f} rows/s  "
              f"{raw_bytes / m['seconds'] / 1e6:.1f} MB/s  output {m['output_bytes'] / 1e6:.2f} MB  "
              f"writer peak RSS over baseline {m['writer_rss_mib']:.1f} MiB")
    if small:
        print(f"swift with {args.small_row_group_mib} MiB row groups: {small['row_groups']} row groups, "
              f"{small['seconds']:.3f} s, output {small['output_bytes'] / 1e6:.2f} MB, writer peak RSS over baseline "
              f"{(small['peak_rss_kib'] - small['rss_before_kib']) / 1024:.1f} MiB")
    size_ratio = medians["swift"]["output_bytes"] / medians["pyarrow"]["output_bytes"]
    print(f"output size swift/pyarrow: {size_ratio:.3f}")
    print(f"ratio swift/pyarrow: {medians['swift']['rows_per_s'] / medians['pyarrow']['rows_per_s']:.2f}")


if __name__ == "__main__":
    main()
