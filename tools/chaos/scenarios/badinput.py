"""Chaos scenario `badinput`: 7. Bad input (5% malformed, 2 MiB lines)."""
import collections
import json
import os
import re

from ..deployment import Deployment, produce
from ..stack import Stack
from ..verification import verify


def scenario(ctx, res, work):
    """5% malformed lines (truncated, bad timestamps, binary, empty, invalid UTF-8) plus 2 MiB lines."""
    count = 100_000 if not ctx.args.short else 20_000
    huge = 12 if not ctx.args.short else 4
    with Stack(ctx, os.path.join(work, "stack"), [("bad", 4)]) as st:
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

