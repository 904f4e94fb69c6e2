#!/usr/bin/env python3
"""Reads Parquet files with Apache Spark's vectorized Parquet reader and compares every row and
column type with pyarrow's reading of the same file.

  spark_check.py FILE [FILE ...]

One local[1] SparkSession (the JVM starts once) reads every file with
spark.sql.parquet.enableVectorizedReader=true, session time zone UTC. For each file it checks:
  - the Spark type of each column is the one pyarrow's type maps to (int32 -> IntegerType,
    int64 -> LongType, timestamp(us, UTC) -> TimestampType, string -> StringType, ...);
  - the scan ran batched (the vectorized reader: "Batched: true" in the physical plan);
  - every value, row by row: timestamps as UTC instants (microseconds since the epoch, through
    unix_micros, so no time zone or Python datetime conversion is involved), nulls, strings, ints.
It prints one line per file, "ok FILE: ..." or "MISMATCH FILE: column C row R: ...", and exits
1 if any file differs, 2 if Spark or Java is missing (run tools/install-deps) or cannot start.

Used by Tests/ParquetTests/SparkInteropTests.swift (Swift) as a reader peer.
"""
import glob
import math
import os
import shutil
import sys


def find_java_home():
    """JAVA_HOME if set; else the JDK/JRE behind `java` on PATH; else Debian's OpenJDK 17."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if java:
        # /usr/lib/jvm/java-17-openjdk-amd64/bin/java -> /usr/lib/jvm/java-17-openjdk-amd64
        return os.path.dirname(os.path.dirname(os.path.realpath(java)))
    for candidate in sorted(glob.glob("/usr/lib/jvm/java-*-openjdk-*")):
        if os.path.exists(os.path.join(candidate, "bin", "java")):
            return candidate
    return None


def fail_setup(message):
    print(f"spark_check: {message}; run tools/install-deps (openjdk-17-jre-headless and pyspark)",
          file=sys.stderr)
    sys.exit(2)


def spark_type_for(arrow_type):
    """The Spark SQL type name pyarrow's type must read as."""
    import pyarrow as pa
    if pa.types.is_int32(arrow_type):
        return "IntegerType"
    if pa.types.is_int64(arrow_type):
        return "LongType"
    if pa.types.is_timestamp(arrow_type):
        # Only UTC-adjusted timestamps are instants (TimestampType); local ones are TimestampNTZType.
        return "TimestampType" if arrow_type.tz is not None else "TimestampNTZType"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "StringType"
    if pa.types.is_boolean(arrow_type):
        return "BooleanType"
    if pa.types.is_float64(arrow_type):
        return "DoubleType"
    return f"(no mapping for {arrow_type})"


def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


def check_file(spark, F, path):
    """Returns None when Spark reads `path` as pyarrow does, else a description of the first difference."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    df = spark.read.parquet(path)
    spark_fields = {f.name: f for f in df.schema.fields}
    if [f.name for f in df.schema.fields] != table.column_names:
        return f"columns: spark {[f.name for f in df.schema.fields]} vs pyarrow {table.column_names}"

    selected = []
    expected = []
    for name in table.column_names:
        arrow_type = table.schema.field(name).type
        want = spark_type_for(arrow_type)
        got = type(spark_fields[name].dataType).__name__
        if got != want:
            return f"column {name}: Spark type {got}, expected {want} (pyarrow {arrow_type})"
        column = table.column(name)
        if pa.types.is_timestamp(arrow_type):
            # Microseconds since the epoch on both sides: the instant, independent of any zone.
            if arrow_type.unit != "us":
                return f"column {name}: pyarrow timestamp unit {arrow_type.unit}, expected us"
            # The SQL function (Spark 3.1+), not F.unix_micros (pyspark 3.5+), so older Sparks run this too.
            quoted = name.replace("`", "``")
            selected.append(F.expr(f"unix_micros(`{quoted}`)").alias(name))
            expected.append(column.cast(pa.int64()).to_pylist())
        else:
            selected.append(F.col(name))
            expected.append(column.to_pylist())

    projected = df.select(*selected)
    plan = projected._jdf.queryExecution().executedPlan().toString()
    if "Batched: true" not in plan:
        return f"the scan did not use the vectorized reader:\n{plan}"

    rows = projected.collect()
    if len(rows) != table.num_rows:
        return f"row count: spark {len(rows)} vs pyarrow {table.num_rows}"
    for c, name in enumerate(table.column_names):
        want = expected[c]
        for r, row in enumerate(rows):
            if not same(row[c], want[r]):
                return f"column {name} row {r}: spark {row[c]!r} vs pyarrow {want[r]!r}"
    return None


def describe(e):
    """One line for an exception; for a JVM error, its innermost cause (the reader's own message)."""
    java = getattr(e, "java_exception", None)
    if java is not None:
        try:
            while java.getCause() is not None:
                java = java.getCause()
            return f"{java.getClass().getName()}: {java.getMessage()}"
        except Exception:  # noqa: BLE001 - fall back to the Python side's message
            pass
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    paths = argv[1:]

    java_home = find_java_home()
    if java_home is None or not os.path.exists(os.path.join(java_home, "bin", "java")):
        fail_setup("no Java runtime found (JAVA_HOME unset, no java on PATH, none in /usr/lib/jvm)")
    os.environ["JAVA_HOME"] = java_home
    try:
        import pyspark
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F
    except ImportError as e:
        fail_setup(f"pyspark is not installed ({e})")

    # Quiet JVM start: no UI, no shuffle partitions to speak of, loopback only.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    try:
        spark = (SparkSession.builder
                 .master("local[1]")
                 .appName("tidemark-spark-check")
                 .config("spark.sql.parquet.enableVectorizedReader", "true")
                 .config("spark.sql.session.timeZone", "UTC")
                 .config("spark.driver.memory", "512m")
                 .config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false")
                 .config("spark.sql.shuffle.partitions", "1")
                 .config("spark.driver.host", "127.0.0.1")
                 .config("spark.driver.bindAddress", "127.0.0.1")
                 # One split per file, so rows come back in file order.
                 .config("spark.sql.files.maxPartitionBytes", str(1 << 30))
                 .getOrCreate())
    except Exception as e:  # noqa: BLE001 - any JVM start failure is a setup failure
        fail_setup(f"Spark did not start: {e}")
    spark.sparkContext.setLogLevel("ERROR")

    failures = 0
    try:
        for path in paths:
            try:
                problem = check_file(spark, F, path)
            except Exception as e:  # noqa: BLE001 - a read error is a failure of this file
                problem = f"read failed: {describe(e)}"
            if problem is None:
                n = spark.read.parquet(path).count()
                print(f"ok {path}: {n} rows, vectorized reader, Spark {pyspark.__version__}")
            else:
                failures += 1
                print(f"MISMATCH {path}: {problem}")
            sys.stdout.flush()
    finally:
        spark.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
