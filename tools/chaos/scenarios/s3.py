"""Chaos scenario `s3`: 3. S3 faults through the fault proxy."""
import json
import os
import re
import sys
import time
import urllib.request

from ..deployment import Deployment, produce
from ..processes import rss_kib, tail
from ..stack import Stack
from ..verification import leftover_uploads, verify


def scenario(ctx, res, work):
    """S3 faults through tools/s3_fault_proxy.py between the engine and moto."""
    parts = 1 if ctx.args.short else 2
    # Long enough for backpressure to pause the partition (two in-flight ~6 s batches) and then
    # stay paused for longer than the engine's --until-idle (6 s).
    outage = 22 if ctx.args.short else 25
    rate = 300 * parts          # ~3.1 KB records: ~1 MB/s per partition
    count = int(rate * (outage + 34))
    with Stack(ctx, os.path.join(work, "stack"), [("s3f", parts)]) as st:
        bucket = st.bucket("chaos-s3")
        plog = os.path.join(work, "proxy.out")
        proxy = ctx.procs.start("s3_fault_proxy", [sys.executable, os.path.join(ctx.tools, "s3_fault_proxy.py"),
                                               "--upstream", st.s3], log_path=plog)
        try:
            deadline = time.time() + 20
            port = None
            while time.time() < deadline and port is None:
                m = re.search(r"PORT (\d+)", open(plog).read())
                port = m and int(m.group(1))
                time.sleep(0.1)
            proxy_url = f"http://127.0.0.1:{port}"

            def rules(r):
                log = json.loads(urllib.request.urlopen(proxy_url + "/__proxy__/log", timeout=10).read())
                n = sum(1 for e in log if e["action"] not in ("forward",))
                req = urllib.request.Request(proxy_url + "/__proxy__/rules", data=json.dumps(r).encode(), method="POST")
                urllib.request.urlopen(req, timeout=10).read()
                return n, len(log)

            # ~3.1 KB records (a pad Kafka's zstd compresses away), uncompressed Parquet,
            # 1,800-record batches: ~5.7 MB files, 2-part multipart uploads at 5 MiB parts; the
            # S3 client gives up on a request after 3 s (sink.request_timeout) and retries.
            dep = Deployment(st, work, "s3", ["s3f"], "g-s3", f"s3://{bucket}/lake", endpoint=proxy_url,
                             max_records=1800, max_age="10s", compression="none", part_size="5MiB",
                             extra_sink='request_timeout = "3s"')
            prod = produce(st, "s3f", count, os.path.join(dep.dir, "produce.out"), partitions=parts, seed=3, pad=3000,
                           rate=rate, background=True)
            eng = dep.start_engine(idle="6s")
            res.runs += 1
            phases = [
                ("503 SlowDown burst on PUT", [{"method": "PUT", "action": "status", "status": 503, "code": "SlowDown", "times": 12}], 5),
                ("500 InternalError on HEAD", [{"method": "HEAD", "action": "status", "status": 500, "code": "InternalError", "times": 6}], 3),
                ("connection reset mid-part", [{"method": "PUT", "query_has": ["partNumber"], "action": "reset", "times": 4}], 5),
                ("responses delayed 5 s, past the 3 s request timeout", [{"method": "PUT", "action": "delay", "seconds": 5, "times": 3}], 8),
                ("200 with <Error> on CompleteMultipartUpload", [{"method": "POST", "query_has": ["uploadId"], "action": "error200", "times": 3}], 6),
                ("total outage (503 on everything)", [{"action": "status", "status": 503, "code": "ServiceUnavailable", "times": -1}], outage),
            ]
            time.sleep(3)
            injected = 0
            max_staged = max_rss = 0
            for label, r, secs in phases:
                n, _ = rules(r)
                injected += n
                t_end = time.time() + secs
                while time.time() < t_end:
                    staged = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(dep.staging) for f in fs)
                    max_staged = max(max_staged, staged)
                    max_rss = max(max_rss, rss_kib(eng.pid))
                    time.sleep(0.5)
                res.check(eng.poll() is None, f"engine exited during '{label}' (rc {eng.returncode}): {tail(eng.log_path, 800)}")
            n, _ = rules([])
            injected += n
            res.faults += injected
            rc = ctx.procs.wait(prod, 600)
            res.check(rc == 0, f"producer exit {rc}")
            rc = ctx.procs.wait(eng, 600)
            res.check(rc == 0, f"engine exit {rc} after the faults: {tail(eng.log_path, 800)}")
            n, _ = rules([])
            # Bound: per partition, max_in_flight sealed batches + the open one (~7 MB each).
            bound = parts * (2 + 1) * 7 * 1024 * 1024
            res.check(max_staged <= bound, f"staging grew to {max_staged} bytes during the faults (bound {bound})")
            v = verify(st, "s3f", dep.sink, count)
            res.judge(v)
            res.audit_ok(dep)
            n = leftover_uploads(st, bucket)
            res.leftover += n
            res.check(n == 0, f"{n} multipart uploads left")
            res.check(not dep.staged_files(), f"staging not empty: {dep.staged_files()[:5]}")
            res.records += count
            retries = len(re.findall(r"retry|retrying", tail(eng.log_path, 1 << 22), re.I))
            res.notes.append(f"{injected} faulty answers: " + "; ".join(p[0] for p in phases)
                             + f"; staging peaked at {max_staged / 1e6:.1f} MB (bound {bound / 1e6:.0f} MB), engine RSS "
                               f"at {max_rss / 1024:.0f} MiB; "
                               f"{retries} retry lines in the engine log")
        finally:
            ctx.procs.stop(proxy)
            for p in list(ctx.procs.live.values()):
                if getattr(p, "name", "").startswith(("etl-engine[s3]", "produce[s3f]")):
                    ctx.procs.stop(p)

