#!/usr/bin/env python3
"""Checks an event-time layout from the outside: DuckDB reads the sink's Parquet objects with
hive_partitioning and every row's time must fall in the `dt=` (and `hour=`) of its path.

    check_layout.py --sink file:///tmp/lake [--column event_time] [--zone UTC]
    check_layout.py --sink s3://bucket/prefix --endpoint http://127.0.0.1:9000

Prints one JSON object: objects, rows, distinct paths, objects per partition, mismatches (at most
20 shown); exits 1 when a row lies outside its path or nothing was found.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import duckdb


def fetch(sink, endpoint, into):
    """Copies the sink's .parquet objects into `into`, keeping their relative keys."""
    if sink.startswith("file://"):
        root = sink[len("file://"):]
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f.endswith(".parquet"):
                    rel = os.path.relpath(os.path.join(dirpath, f), root)
                    if rel.startswith("_"):
                        continue
                    os.makedirs(os.path.join(into, os.path.dirname(rel)), exist_ok=True)
                    shutil.copy(os.path.join(dirpath, f), os.path.join(into, rel))
        return
    import boto3
    bucket, _, prefix = sink[len("s3://"):].partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            rel = o["Key"][len(prefix):]
            if not rel.endswith(".parquet") or rel.startswith("_"):
                continue
            os.makedirs(os.path.join(into, os.path.dirname(rel)), exist_ok=True)
            s3.download_file(bucket, o["Key"], os.path.join(into, rel))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sink", required=True)
    ap.add_argument("--endpoint")
    ap.add_argument("--column", default="event_time", help="the timestamp column the path was rendered from")
    ap.add_argument("--zone", default="UTC", help="the zone the path was rendered in (DuckDB time zone name)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="check-layout-")
    try:
        fetch(args.sink, args.endpoint, work)
        duck = duckdb.connect()
        duck.execute(f"SET TimeZone = '{args.zone}'")
        pattern = os.path.join(work, "**", "*.parquet")
        names = [r[0] for r in duck.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, union_by_name = true)").fetchall()]
        has_hour = "hour" in names
        if "dt" not in names:
            print(json.dumps({"ok": False, "error": f"no dt= path segment in the layout (columns {names})"}))
            return 1
        local = f"timezone('{args.zone}', {args.column})"
        hour_check = f" OR hour::INTEGER <> hour({local})" if has_hour else ""
        base = f"read_parquet('{pattern}', hive_partitioning = true, union_by_name = true, filename = true)"
        rows, objects, paths = duck.execute(
            f"SELECT count(*), count(DISTINCT filename), count(DISTINCT (dt{', hour' if has_hour else ''})) FROM {base}").fetchone()
        bad = duck.execute(
            f"SELECT filename, {args.column}::VARCHAR, dt{', hour' if has_hour else ''} FROM {base} "
            f"WHERE strftime({local}, '%Y-%m-%d') <> dt::VARCHAR{hour_check} LIMIT 20").fetchall()
        nbad = duck.execute(
            f"SELECT count(*) FROM {base} WHERE strftime({local}, '%Y-%m-%d') <> dt::VARCHAR{hour_check}").fetchone()[0]
        per_partition = dict(duck.execute(
            f"SELECT kafka_partition, count(DISTINCT filename) FROM {base} GROUP BY 1 ORDER BY 1").fetchall())
        out = {"ok": nbad == 0 and rows > 0, "rows": rows, "objects": objects, "paths": paths,
               "objects_per_partition": {str(k): v for k, v in per_partition.items()}, "rows_outside_their_path": nbad,
               "examples": [[os.path.relpath(f, work), t, *map(str, rest)] for f, t, *rest in bad]}
        print(json.dumps(out))
        return 0 if out["ok"] else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
