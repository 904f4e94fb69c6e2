#!/usr/bin/env python3
"""Creates N small objects with tidemark metadata in a moto bucket `aud` (prefix lake/) and the
matching COMMITTED rows in a manifest, for timing etl-audit. Used by bench/audit_bench.sh."""
import boto3, sqlite3, sys, time, concurrent.futures as cf
endpoint, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
s3.create_bucket(Bucket="aud")
body = b"x" * 1000
def put(i):
    p = i % 4
    key = f"lake/topic=t/dt=2026-11-26/partition={p}/t+{p}+{i//4*10:020d}.parquet"
    md = {"tidemark-topic": "t", "tidemark-partition": str(p), "tidemark-start": str(i//4*10),
          "tidemark-end": str(i//4*10+9), "tidemark-sha256": "ab"*32, "tidemark-rejected": "0"}
    s3.put_object(Bucket="aud", Key=key, Body=body, Metadata=md)
    return (i, p, key)
t = time.time()
with cf.ThreadPoolExecutor(16) as ex:
    rows = list(ex.map(put, range(n)))
print("put", n, "objects in", round(time.time()-t, 1), "s", file=sys.stderr)
con = sqlite3.connect(db)
now = time.time()
con.executemany("INSERT INTO batches (topic, partition, start_offset, end_offset, good_count, rejected_count, object_key, file_path, file_sha256, file_size, state, created_at, updated_at) VALUES ('t',?,?,?,10,0,?,?,?,1000,'COMMITTED',?,?)",
    [(p, i//4*10, i//4*10+9, key, f"/tmp/meas/staging/{i}.parquet", "ab"*32, now, now) for (i, p, key) in rows])
con.commit()
