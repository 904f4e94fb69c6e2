#!/usr/bin/env python3
"""Reads a Parquet file with pyarrow, DuckDB AND polars and reports what each reader sees.

The three decode Parquet independently: pyarrow with Arrow C++'s reader, DuckDB with its own,
polars with its own Rust reader (polars-parquet).

Used by Tests/ParquetTests (Swift) to check interoperability of the Parquet writer.

  parquet_check.py read FILE [--dump DIR]
      Prints JSON: pyarrow's schema/metadata/statistics and DuckDB's types/parquet_metadata.
      With --dump, polars reads the file too (its columns, types and row count join the JSON),
      and every column's values, as read by each of the three, are written in a canonical binary
      form the Swift test compares byte for byte against what it wrote:
        DIR/<reader>.<col>.valid    one byte per row: 1 = value, 0 = null
        DIR/<reader>.<col>.values   non-null values: int32 4 bytes LE, int64/timestamp 8 bytes LE
                                    (microseconds), double 8 bytes LE, bool 1 byte, string: bytes
        DIR/<reader>.<col>.lengths  strings only: 4-byte LE length per non-null value
      <reader> is "pyarrow", "duckdb" or "polars"; <col> is the column index.

  parquet_check.py write-sample FILE --codec C [--no-dictionary] [--rows N] [--row-group-size N]
      Writes a sample file with pyarrow (the footer reader's test input) and prints the same
      JSON as `read` for it.
"""
import argparse
import json
import os
import sys

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def stat_value(v):
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray)):
        return {"hex": bytes(v).hex()}
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": str(v)}
    if isinstance(v, float):
        return {"double": v.hex()}
    return {"str": str(v)}


def pyarrow_report(path):
    f = pq.ParquetFile(path)
    md = f.metadata
    schema = f.schema_arrow
    out = {
        "num_rows": md.num_rows,
        "num_row_groups": md.num_row_groups,
        "created_by": md.created_by,
        "format_version": md.format_version,
        "key_value": {k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
                      for k, v in (md.metadata or {}).items()},
        "schema": [{"name": fld.name, "type": str(fld.type), "nullable": fld.nullable} for fld in schema],
        "parquet_schema": [],
        "row_groups": [],
    }
    for i in range(len(md.schema)):
        c = md.schema.column(i)
        out["parquet_schema"].append({
            "name": c.name,
            "physical_type": c.physical_type,
            "logical_type": str(c.logical_type),
            "converted_type": str(c.converted_type),
            "max_definition_level": c.max_definition_level,
        })
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        cols = []
        for j in range(rg.num_columns):
            c = rg.column(j)
            st = c.statistics
            stats = None
            if st is not None:
                stats = {
                    "has_min_max": st.has_min_max,
                    "min": stat_value(st.min_raw) if st.has_min_max else None,
                    "max": stat_value(st.max_raw) if st.has_min_max else None,
                    "null_count": st.null_count if st.has_null_count else None,
                }
            cols.append({
                "path": c.path_in_schema,
                "compression": c.compression,
                "encodings": list(c.encodings),
                "num_values": c.num_values,
                "has_dictionary_page": c.has_dictionary_page,
                "dictionary_page_offset": c.dictionary_page_offset,
                "data_page_offset": c.data_page_offset,
                "total_compressed_size": c.total_compressed_size,
                "total_uncompressed_size": c.total_uncompressed_size,
                "statistics": stats,
            })
        out["row_groups"].append({"num_rows": rg.num_rows, "total_byte_size": rg.total_byte_size, "columns": cols})
    return out


def duckdb_report(con, path):
    quoted = path.replace("'", "''")
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{quoted}')").fetchall()
    out = {
        "columns": [d[0] for d in described],
        "types": [str(d[1]) for d in described],
        "count": con.execute(f"SELECT count(*) FROM read_parquet('{quoted}')").fetchall()[0][0],
        "metadata": [],
    }
    rows = con.execute(
        "SELECT row_group_id, path_in_schema, num_values, stats_null_count, stats_min_value, stats_max_value, "
        "compression, encodings, encoding_stats, min_is_exact, max_is_exact "
        f"FROM parquet_metadata('{quoted}') ORDER BY row_group_id, column_id").fetchall()
    for r in rows:
        out["metadata"].append({
            "row_group_id": r[0], "path": r[1], "num_values": r[2], "null_count": r[3],
            "min": r[4], "max": r[5], "compression": r[6], "encodings": r[7],
            "encoding_stats": [f"{e['page_type']}:{e['encoding']}:{e['count']}" for e in (r[8] or [])],
            "min_is_exact": r[9], "max_is_exact": r[10],
        })
    kv = con.execute(f"SELECT key, value FROM parquet_kv_metadata('{quoted}')").fetchall()
    out["key_value"] = {bytes(k).decode("utf-8", "replace"): bytes(v).decode("utf-8", "replace") for k, v in kv}
    return out


def dump_array(arr, prefix):
    """Writes the canonical valid/values/lengths files for one column (see module docstring)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    valid = pc.is_valid(arr).to_numpy(zero_copy_only=False).astype(np.uint8)
    with open(prefix + ".valid", "wb") as f:
        f.write(valid.tobytes())
    present = pc.drop_null(arr)
    t = present.type
    if pa.types.is_timestamp(t):
        present = present.cast(pa.int64())
        t = present.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or \
            pa.types.is_large_binary(t) or pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        present = present.cast(pa.large_binary())
        if isinstance(present, pa.ChunkedArray):
            present = present.combine_chunks()
        bufs = present.buffers()
        n = len(present)
        offsets = np.frombuffer(bufs[1], dtype="<i8", count=n + 1, offset=present.offset * 8) if n else np.zeros(1, "<i8")
        lengths = np.diff(offsets).astype("<u4")
        data = bufs[2].to_pybytes()[offsets[0]:offsets[-1]] if n and bufs[2] is not None else b""
        with open(prefix + ".lengths", "wb") as f:
            f.write(lengths.tobytes())
        with open(prefix + ".values", "wb") as f:
            f.write(data)
        return
    np_values = present.to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(t):
        raw = np_values.astype(np.uint8).tobytes()
    elif pa.types.is_int32(t):
        raw = np_values.astype("<i4").tobytes()
    elif pa.types.is_int64(t):
        raw = np_values.astype("<i8").tobytes()
    elif pa.types.is_float64(t):
        raw = np_values.astype("<f8").tobytes()
    else:
        raise SystemExit(f"unsupported type {t}")
    with open(prefix + ".values", "wb") as f:
        f.write(raw)


def read_command(path, dump):
    report = {"pyarrow": pyarrow_report(path)}
    con = duckdb.connect()
    report["duckdb"] = duckdb_report(con, path)
    if dump:
        os.makedirs(dump, exist_ok=True)
        table = pq.read_table(path)
        for i, name in enumerate(table.column_names):
            dump_array(table.column(i), os.path.join(dump, f"pyarrow.{i}"))
        quoted = path.replace("'", "''")
        dtable = con.sql(f"SELECT * FROM read_parquet('{quoted}')").to_arrow_table()
        if isinstance(dtable, pa.RecordBatchReader):
            dtable = dtable.read_all()
        for i in range(dtable.num_columns):
            dump_array(dtable.column(i), os.path.join(dump, f"duckdb.{i}"))
        frame = pl.read_parquet(path)
        report["polars"] = {"columns": frame.columns, "types": [str(t) for t in frame.dtypes], "count": frame.height}
        ptable = frame.to_arrow()
        for i in range(ptable.num_columns):
            dump_array(ptable.column(i), os.path.join(dump, f"polars.{i}"))
    con.close()
    return report


def write_sample(path, codec, dictionary, rows, row_group_size):
    import random
    rng = random.Random(42)
    levels = ["DEBUG", "INFO", "WARN", "ERROR"]
    table = pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "ts": pa.array([1_700_000_000_000_000 + i * 1000 for i in range(rows)], pa.timestamp("us", tz="UTC")),
        "level": pa.array([levels[rng.randrange(4)] for _ in range(rows)], pa.string()),
        "msg": pa.array([None if i % 7 == 0 else f"message {i} \u00e9\u4e2d" for i in range(rows)], pa.string()),
        "part": pa.array([i % 3 for i in range(rows)], pa.int32()),
        "ok": pa.array([i % 2 == 0 for i in range(rows)], pa.bool_()),
        "score": pa.array([i * 0.5 for i in range(rows)], pa.float64()),
    })
    table = table.replace_schema_metadata({"tidemark.topic": "logs", "tidemark.partition": "3"})
    pq.write_table(table, path, compression=codec, use_dictionary=dictionary, row_group_size=row_group_size)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("read")
    r.add_argument("file")
    r.add_argument("--dump")
    w = sub.add_parser("write-sample")
    w.add_argument("file")
    w.add_argument("--codec", default="zstd")
    w.add_argument("--no-dictionary", action="store_true")
    w.add_argument("--rows", type=int, default=1000)
    w.add_argument("--row-group-size", type=int, default=400)
    args = ap.parse_args()
    if args.cmd == "write-sample":
        write_sample(args.file, args.codec, not args.no_dictionary, args.rows, args.row_group_size)
        report = read_command(args.file, None)
    else:
        report = read_command(args.file, args.dump)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
