"""Chaos scenario `disk`: 6. Disk full (4 MiB tmpfs staging) and read-only manifest."""
import os
import re
import subprocess
import time

from ..deployment import Deployment, produce
from ..processes import tail
from ..stack import Stack
from ..verification import committed_offsets, delivered_offsets, verify


def scenario(ctx, res, work):
    """Staging on a 4 MiB tmpfs that fills up; the manifest on a read-only mount."""
    mnt = os.path.join(work, "tmpfs")
    ro = os.path.join(work, "ro")
    os.makedirs(mnt, exist_ok=True)
    os.makedirs(ro, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        res.not_run = f"cannot mount a tmpfs ({r.stderr.strip() or r.returncode}); needs root / CAP_SYS_ADMIN"
        return
    mounted = [mnt]
    count = 20_000
    try:
        with Stack(ctx, os.path.join(work, "stack"), [("disk", 1)]) as st:
            bucket = st.bucket("chaos-disk")
            # ~0.6 MB batches; staging.max_bytes 1 MiB pauses consumption while uploads drain (checked
            # once per poll of up to 5,000 records, so up to ~3 MB can be staged), so a 4 MiB file
            # system is enough once the filler is gone.
            dep = Deployment(st, work, "disk", ["disk"], "g-disk", f"s3://{bucket}/lake", max_records=2000,
                             max_age="30s", compression="none", staging_dir=os.path.join(mnt, "staging"),
                             staging_max_bytes="1MiB")
            prod = produce(st, "disk", count, os.path.join(dep.dir, "produce.out"), partitions=1, seed=7, pad=200,
                           rate=2000, background=True)
            e = dep.start_engine(idle="3s")
            res.runs += 1
            # Let it deliver a few batches, then fill the file system up to ~0.3 MiB (less than
            # one ~0.6 MB batch file) while records keep arriving.
            time.sleep(4)
            filler = os.path.join(mnt, "filler")
            res.faults += 1
            before = committed_offsets(st, "g-disk", "disk", 1)
            # Keep it full: uploads that finish free staged files, so the filler is topped up
            # every 0.2 s until the engine gives up (or 40 s pass).
            deadline = time.time() + 40
            with open(filler, "ab") as f:
                while time.time() < deadline and e.poll() is None:
                    vfs = os.statvfs(mnt)
                    free = vfs.f_bavail * vfs.f_frsize
                    if free > 350 * 1024:
                        try:
                            f.write(b"\0" * (free - 300 * 1024))
                            f.flush()
                        except OSError:
                            pass
                    time.sleep(0.2)
            exited = e.poll() is not None
            rc = ctx.procs.wait(e, 1) if exited else None
            out = tail(e.log_path, 1 << 20)
            if exited:
                res.check(rc in (1, 2) and re.search(r"No space left|ENOSPC|space", out, re.I),
                          f"disk full: expected a clear error exit, got {rc}: {out[-800:]}")
                msg = next((ln for ln in out.splitlines() if re.search(r"No space left|ENOSPC", ln)), "")[:300]
                res.notes.append(f"staging full: engine exited {rc} with: {msg.strip()}")
            else:
                res.notes.append("staging full: engine kept running (paused) for 40 s")
            committed = committed_offsets(st, "g-disk", "disk", 1)
            have = delivered_offsets(dep.sink, st.s3, "disk")
            for p, off in committed.items():
                if off > 0:
                    missing = [o for o in range(off) if o not in have[p]]
                    res.check(not missing, f"committed offset {off} of partition {p} covers {len(missing)} records not in S3")
            res.notes.append(f"committed offset before the disk filled {before[0]}, while full {committed[0]}: "
                             "every offset below it is in S3")
            os.unlink(filler)
            rc = ctx.procs.wait(prod, 300)
            res.check(rc == 0, f"producer exit {rc}")
            if exited:
                rc, out = dep.run_engine(idle="3s")
                res.runs += 1
                res.check(rc == 0, f"restart after freeing space exit {rc}: {out[-800:]}")
            else:
                rc = ctx.procs.wait(e, 300)
                res.check(rc == 0, f"engine did not continue after space returned: {rc}")
            v = verify(st, "disk", dep.sink, count)
            res.judge(v)
            res.audit_ok(dep)
            res.check(not dep.staged_files(), f"staging not empty: {dep.staged_files()[:5]}")
            res.records += count

            # The manifest on a read-only file system: a clear error at start.
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", ro], capture_output=True, text=True)
            if r.returncode != 0:
                res.notes.append(f"read-only manifest: NOT RUN (mount -o ro failed: {r.stderr.strip()})")
            else:
                mounted.append(ro)
                rodep = Deployment(st, work, "disk-ro", ["disk"], "g-disk-ro", f"s3://{bucket}/ro",
                                   manifest=os.path.join(ro, "state", "manifest.sqlite"))
                rc, out = rodep.run_engine(idle="2s", timeout=60)
                res.runs += 1
                res.faults += 1
                res.check(rc == 2 and re.search(r"read-only|Read-only|permission|cannot", out) and ro in out,
                          f"read-only manifest: expected exit 2 naming the path, got {rc}: {out[-600:]}")
                first = next((ln for ln in out.splitlines() if "etl-engine" in ln), out.strip()[:200])
                res.notes.append(f"manifest on a read-only mount: exit {rc}: {first.strip()[:250]}")
    finally:
        for m in reversed(mounted):
            subprocess.run(["umount", m], capture_output=True)
            if os.path.ismount(m):
                subprocess.run(["umount", "-l", m], capture_output=True)

