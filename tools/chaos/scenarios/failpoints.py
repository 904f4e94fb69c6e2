"""Chaos scenario `failpoints`: 1. Failpoint matrix (each failpoint x restart / etl-recover + restart)."""
import os
from concurrent.futures import ThreadPoolExecutor

from ..deployment import Deployment, produce
from ..runtime import say
from ..stack import Stack
from ..verification import leftover_uploads, verify


def scenario(ctx, res, work):
    """Every failpoint x {restart; etl-recover then restart} -> exactly once, audit clean."""
    modes = ["restart", "recover+restart"]
    cells = [(p, m) for p in ctx.failpoints for m in modes]
    if ctx.args.short:   # every failpoint once, the two modes alternating
        cells = [(p, modes[i % 2]) for i, p in enumerate(ctx.failpoints)]
    topics = [(f"fp{i}", 1) for i in range(len(cells))]
    count = 20_000
    with Stack(ctx, os.path.join(work, "stack"), topics) as st:
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

        with ThreadPoolExecutor(max_workers=ctx.args.jobs) as pool:
            for f in [pool.submit(cell, i) for i in range(len(cells))]:
                f.result()
    res.notes.append(f"{len(cells)} cells ({len(ctx.failpoints)} failpoints x {'2 modes' if not ctx.args.short else 'alternating modes'}), each crashing on its 2nd hit during 2-part "
                     f"multipart uploads (8,000 x ~700-byte records per batch, 5 MiB parts)")

