"""Chaos scenario `security`: 8. Security (planted secrets, modes, hostile topic names)."""
import os

from ..deployment import Deployment, produce
from ..processes import free_port, run_capture
from ..stack import Stack
from ..verification import verify


def scenario(ctx, res, work):
    """Planted secrets never printed; 0700/0600 modes; object keys stay under the prefix."""
    secret_key = "PLANTED-S3-SECRET-" + os.urandom(6).hex()
    secret_sasl = "PLANTED-SASL-PASSWORD-" + os.urandom(6).hex()
    secret_env = "PLANTED-ENV-SECRET-" + os.urandom(6).hex()
    odd_topics = ["a..b", "-.-_", "..x.."]
    with Stack(ctx, os.path.join(work, "stack"), [("sec", 2)] + [(t, 1) for t in odd_topics]) as st:
        bucket = st.bucket("chaos-sec")
        dep = Deployment(st, work, "sec", ["sec"] + odd_topics, "g-sec", f"s3://{bucket}/lake", max_records=2000,
                         log_level="trace",
                         extra_sink=f'access_key_id = "testing"\nsecret_access_key = "{secret_key}"',
                         extra_kafka_props={"sasl.username": "chaos", "sasl.password": secret_sasl})
        dep.env["AWS_SECRET_ACCESS_KEY"] = secret_env
        produce(st, "sec", 5000, dep.log("produce"), partitions=2, seed=9, bad=0.02)
        for t in odd_topics:
            produce(st, t, 500, dep.log("produce"), partitions=1, seed=10)
        outputs = []
        rc, out, err = run_capture(ctx.procs, "etl-engine --check", [os.path.join(ctx.bin, "etl-engine"), "--config", dep.config, "--check"],
                                   env=dep.env, log_path=dep.log("check"))
        outputs.append(out + err)
        res.check(rc == 0, f"etl-engine --check exit {rc}: {(out + err)[-500:]}")
        rc, out = dep.run_engine(idle="3s", failpoints="after_part_upload@1,after_manifest_staged@3")
        outputs.append(out)
        rc, out = dep.run_engine(idle="3s")
        outputs.append(out)
        res.check(rc == 0, f"engine exit {rc}: {out[-600:]}")
        for extra in (("--json",), ("--dry-run", "--json"), ()):
            rc, out, err = dep.recover(extra)
            outputs.append(out + err)
        for extra in (("--json",), ("--deep", "--json"), ()):
            rc, out, err = run_capture(ctx.procs, "etl-audit", [os.path.join(ctx.bin, "etl-audit"), "--config", dep.config, *extra],
                                       env=dep.env, log_path=dep.log("audit"))
            outputs.append(out + err)
            res.check(rc == 0, f"etl-audit {' '.join(extra)} exit {rc}: {(out + err)[-500:]}")
        # An error path: the S3 endpoint refuses connections.
        bad = Deployment(st, work, "sec-bad", ["sec"], "g-sec-bad", f"s3://{bucket}/lake2",
                         endpoint=f"http://127.0.0.1:{free_port()}",
                         extra_sink=f'access_key_id = "testing"\nsecret_access_key = "{secret_key}"',
                         extra_kafka_props={"sasl.username": "chaos", "sasl.password": secret_sasl})
        bad.env["AWS_SECRET_ACCESS_KEY"] = secret_env
        rc, out, err = run_capture(ctx.procs, "etl-engine --check", [os.path.join(ctx.bin, "etl-engine"), "--config", bad.config, "--check"],
                                   env=bad.env, log_path=bad.log("check"))
        outputs.append(out + err)
        rc, out, err = bad.recover()
        outputs.append(out + err)
        rc, doc = bad.audit()
        res.runs += 11
        # grep every log the suite kept for this scenario (engine, tools, dev broker, moto).
        leaks = []
        for dirpath, _, files in os.walk(work):
            for f in files:
                if f.endswith((".log", ".out")):
                    data = open(os.path.join(dirpath, f), "rb").read()
                    for s in (secret_key, secret_sasl, secret_env):
                        if s.encode() in data:
                            leaks.append(f"{os.path.relpath(os.path.join(dirpath, f), work)}: {s[:22]}...")
        for text in outputs:
            for s in (secret_key, secret_sasl, secret_env):
                if s in text:
                    leaks.append(f"output: {s[:22]}...")
        res.faults += 3
        res.check(not leaks, f"planted secrets printed: {sorted(set(leaks))[:6]}")
        # Modes.
        mode = lambda p: oct(os.stat(p).st_mode & 0o777)
        res.check(mode(dep.staging) == "0o700", f"staging dir mode {mode(dep.staging)}")
        res.check(mode(dep.manifest) == "0o600", f"manifest mode {mode(dep.manifest)}")
        res.check(mode(os.path.dirname(dep.manifest)) == "0o700", f"manifest dir mode {mode(os.path.dirname(dep.manifest))}")
        # Keys stay under the prefix.
        keys = []
        for page in st.s3client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys += [o["Key"] for o in page.get("Contents", [])]
        escaped = [k for k in keys if not (k.startswith("lake/") or k.startswith("lake2/"))
                   or any(c in (".", "..", "") for c in k.split("/"))]
        res.check(keys and not escaped, f"object keys outside the prefix or with ./.. components: {escaped[:5]}")
        for t in odd_topics:
            res.judge(verify(st, t, dep.sink, 500), f"topic {t}")
        v = verify(st, "sec", dep.sink, 5000)
        res.judge(v)
        res.records += 5000 + 500 * len(odd_topics)
        # Hostile names in the config are refused before anything is written.
        refused = []
        for t in ("../../escape", "a/b", "..", "."):
            h = Deployment(st, work, f"sec-h{len(refused)}", [t], "g-h", f"s3://{bucket}/lake3")
            rc, out = h.run_engine(idle="1s", timeout=60)
            res.runs += 1
            refused.append((t, rc))
            res.check(rc == 2, f"topic name {t!r}: expected exit 2 (refused), got {rc}: {out[-300:]}")
        res.notes.append(f"3 planted secrets (config secret_access_key, sasl.password, AWS_SECRET_ACCESS_KEY) absent "
                         f"from {len(outputs)} outputs and every log (trace level); modes 0700/0600; "
                         f"{len(keys)} keys under the prefix for topics {odd_topics}; config topics refused: {refused}")

