"""Chaos scenario `kill`: 2. Random kill -9 loop."""
import collections
import os
import random
import time

from ..deployment import Deployment, produce
from ..stack import Stack
from ..verification import kill_after_assignment, kill_phase, leftover_uploads, low_watermarks, verify


def scenario(ctx, res, work):
    """Seeded random kill -9 loop during a large run."""
    count = 1_000_000 if not ctx.args.short else 100_000
    kills = 50 if not ctx.args.short else 8
    batch = 5000 if not ctx.args.short else 2000
    rng = random.Random(ctx.args.seed)
    with Stack(ctx, os.path.join(work, "stack"), [("kills", 4)]) as st:
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
        prod = produce(st, "kills", count, os.path.join(dep.dir, "produce.out"), partitions=4, seed=ctx.args.seed,
                       bad=0.01, short=True, dense=True, background=True)
        lo, hi = (0.2, 4.0)
        recovers = 0
        phases = collections.Counter()
        try:
            for k in range(kills):
                if not kill_after_assignment(ctx, res, dep, rng, lo, hi, k):
                    break
                for what in kill_phase(dep):
                    phases[what] += 1
                if (k + 1) % (10 if not ctx.args.short else 3) == 0:
                    rc, out, err = dep.recover()
                    recovers += 1
                    res.runs += 1
                    res.check(rc == 0, f"etl-recover after kill {k + 1} exit {rc}: {(out + err)[-600:]}")
            rc = ctx.procs.wait(prod, 900)
            res.check(rc == 0, f"producer exit {rc}")
        finally:
            if prod.poll() is None:
                ctx.procs.stop(prod)
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
        res.notes.append(f"{kills} kills (seed {ctx.args.seed}, each {lo}-{hi} s after the engine got its partitions) "
                         f"while {count:,} records were produced and consumed over 4 partitions, {batch}-record batches; etl-recover after every {10 if not ctx.args.short else 3} kills "
                         f"({recovers}x) and at the end; what each kill left behind: {dict(phases) or 'nothing'}; staging empty apart from {len(q)} sealed files with no "
                         "manifest row (killed between the rename and the STAGED row), moved to staging/quarantine "
                         "by design and read again from Kafka")

