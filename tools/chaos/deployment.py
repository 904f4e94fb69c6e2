"""One engine deployment (config file, staging dir, manifest, sink) and the record producer
(tools/produce_logs.py) that feeds a stack's topics."""
import json
import os
import subprocess
import sys

from .processes import run_capture, tail


class Deployment:
    """One engine deployment: a config file, staging dir and manifest, a sink."""

    def __init__(self, stack, work, name, topics, group, sink, endpoint=None, **kw):
        self.ctx = stack.ctx
        self.stack, self.name, self.topics, self.group, self.sink = stack, name, topics, group, sink
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.staging = kw.pop("staging_dir", os.path.join(self.dir, "staging"))
        self.manifest = kw.pop("manifest", os.path.join(self.dir, "state", "manifest.sqlite"))
        self.endpoint = endpoint or (stack.s3 if sink.startswith("s3://") else None)
        self.runs = 0
        o = dict(max_records=5000, max_age="2s", part_size="5MiB", compression="zstd", session_timeout="3s",
                 max_in_flight=2, orphan_upload_grace="1h", log_level="info", extra_kafka_props={},
                 extra_sink="", staging_max_bytes=None, instance_id=None)
        o.update(kw)
        props = {"heartbeat.interval.ms": "300"}
        props.update(o["extra_kafka_props"])
        lines = ["[kafka]", f'brokers = "{stack.bootstrap}"', "topics = [" + ", ".join(f'"{t}"' for t in topics) + "]",
                 f'group_id = "{group}"', f'session_timeout = "{o["session_timeout"]}"']
        if o["instance_id"]:
            lines.append(f'instance_id = "{o["instance_id"]}"')
        lines.append("[kafka.properties]")
        lines += [f'"{k}" = "{v}"' for k, v in props.items()]
        lines += ["[sink]", f'url = "{sink}"', f'part_size = "{o["part_size"]}"', f'compression = "{o["compression"]}"']
        if self.endpoint:
            lines.append(f'endpoint = "{self.endpoint}"')
        if o["extra_sink"]:
            lines.append(o["extra_sink"])
        lines += ["[staging]", f'dir = "{self.staging}"', f'manifest = "{self.manifest}"']
        if o["staging_max_bytes"]:
            lines.append(f'max_bytes = "{o["staging_max_bytes"]}"')
        lines += ["[batch]", f'max_records = {o["max_records"]}', f'max_age = "{o["max_age"]}"',
                  f'max_in_flight = {o["max_in_flight"]}',
                  "[engine]", 'status_interval = "5s"', f'log_level = "{o["log_level"]}"',
                  f'orphan_upload_grace = "{o["orphan_upload_grace"]}"']
        self.config = os.path.join(self.dir, "tidemark.toml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.env = dict(self.ctx.aws_env)

    def log(self, what):
        self.runs += 1
        return os.path.join(self.dir, f"{what}-{self.runs:03d}.log")

    def start_engine(self, idle=None, failpoints=None, extra_env=None):
        env = dict(self.env)
        if failpoints:
            env["TIDEMARK_FAILPOINTS"] = failpoints
        env.update(extra_env or {})
        argv = [os.path.join(self.ctx.bin, "etl-engine"), "--config", self.config]
        if idle:
            argv += ["--until-idle", idle]
        return self.ctx.procs.start(f"etl-engine[{self.name}]", argv, log_path=self.log("engine"), env=env)

    def run_engine(self, idle="2s", failpoints=None, timeout=240, extra_env=None):
        p = self.start_engine(idle=idle, failpoints=failpoints, extra_env=extra_env)
        try:
            rc = self.ctx.procs.wait(p, timeout)
        except subprocess.TimeoutExpired:
            return -999, tail(p.log_path) + f"\n[chaos] engine timed out after {timeout}s and was stopped"
        return rc, tail(p.log_path, 1 << 20)

    def recover(self, extra=("--json",)):
        argv = [os.path.join(self.ctx.bin, "etl-recover"), "--config", self.config, *extra]
        return run_capture(self.ctx.procs, "etl-recover", argv, env=self.env, timeout=180, log_path=self.log("recover"))

    def audit(self, extra=("--json",)):
        argv = [os.path.join(self.ctx.bin, "etl-audit"), "--config", self.config, *extra]
        rc, out, err = run_capture(self.ctx.procs, "etl-audit", argv, env=self.env, timeout=180,
                                   log_path=self.log("audit"))
        try:
            doc = json.loads(out)
        except Exception:
            doc = {"unparsed": out[-2000:], "stderr": err[-2000:]}
        return rc, doc

    def staged_files(self):
        out = []
        for dirpath, dirnames, files in os.walk(self.staging):
            dirnames[:] = [d for d in dirnames if d != "quarantine"]
            out += [os.path.relpath(os.path.join(dirpath, f), self.staging) for f in files]
        return out

    def quarantined(self):
        q = os.path.join(self.staging, "quarantine")
        return sorted(os.listdir(q)) if os.path.isdir(q) else []


def produce(stack, topic, count, log_path, partitions=4, seed=1, bad=0.0, pad=0, rate=0, huge=0, short=False,
            start_serial=0, background=False, dense=False, random_bytes=0, extra_args=()):
    ctx = stack.ctx
    argv = [sys.executable, os.path.join(ctx.tools, "produce_logs.py"), "--bootstrap", stack.bootstrap, f"--topic={topic}",
            "--count", str(count), "--partitions", str(partitions), "--seed", str(seed), "--bad-fraction", str(bad),
            "--pad", str(pad), "--start-serial", str(start_serial)]
    if rate:
        argv += ["--rate", str(rate)]
    if huge:
        argv += ["--huge-lines", str(huge)]
    if short:
        argv += ["--short-messages"]
    if dense:
        argv += ["--dense"]
    if random_bytes:
        argv += ["--random-bytes", str(random_bytes)]
    argv += list(extra_args)
    if background:
        return ctx.procs.start(f"produce[{topic}]", argv, log_path=log_path)
    rc, out, err = run_capture(ctx.procs, f"produce[{topic}]", argv, timeout=900, log_path=log_path)
    if rc != 0:
        raise RuntimeError(f"produce_logs.py failed ({rc}): {err[-1500:]}")
    return json.loads(out.strip().splitlines()[-1])
