"""The local stacks a scenario owns (dev broker + moto, or Tansu + moto) and the S3 fault proxy
in front of moto; each stops what it started by PID."""
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request

import devbroker_ctl

from .processes import free_port, tail


class Stack:
    """moto_server + etl-devbroker (with its control socket) on 127.0.0.1, owned by one scenario."""

    def __init__(self, ctx, work, topics):
        self.ctx = ctx
        self.work = work
        self.topics = topics
        self.moto = self.broker = None

    def __enter__(self):
        os.makedirs(self.work, exist_ok=True)
        port = free_port()
        self.s3 = f"http://127.0.0.1:{port}"
        self.moto = self.ctx.procs.start("moto_server", ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                                log_path=os.path.join(self.work, "moto.log"))
        self.bootstrap_file = os.path.join(self.work, "kafka.bootstrap")
        # A short path: Unix socket paths are limited to 107 bytes.
        self.control = os.path.join(tempfile.mkdtemp(prefix="tmctl-"), "kafka.control")
        argv = [os.path.join(self.ctx.bin, "etl-devbroker"), "--bootstrap-file", self.bootstrap_file, "--control", self.control]
        for name, parts in self.topics:
            argv.append(f"--topic={name}:{parts}")
        self.broker = self.ctx.procs.start("etl-devbroker", argv, log_path=os.path.join(self.work, "kafka.log"))
        deadline = time.time() + 60
        while time.time() < deadline:
            ok = True
            try:
                urllib.request.urlopen(self.s3 + "/", timeout=2).read()
            except Exception:
                ok = False
            if ok and os.path.exists(self.bootstrap_file) and os.path.exists(self.control):
                break
            if self.moto.poll() is not None or self.broker.poll() is not None:
                raise RuntimeError(f"stack did not start: {tail(os.path.join(self.work, 'moto.log'))} "
                                   f"{tail(os.path.join(self.work, 'kafka.log'))}")
            time.sleep(0.2)
        else:
            raise RuntimeError("stack did not start within 60 s")
        self.bootstrap = open(self.bootstrap_file).read().strip()
        if self.ctl("ping") != "ok":
            raise RuntimeError("dev broker control channel does not answer")
        return self

    def __exit__(self, *exc):
        for p in (self.broker, self.moto):
            if p is not None:
                self.ctx.procs.stop(p, timeout=10)
        shutil.rmtree(os.path.dirname(self.control), ignore_errors=True)
        return False

    def ctl(self, *commands):
        answers = devbroker_ctl.send(self.control, list(commands))
        return answers[0] if len(answers) == 1 else answers

    def s3client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.s3, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def bucket(self, name):
        self.s3client().create_bucket(Bucket=name)
        return name


class TansuStack:
    """Tansu (a second, independent Kafka-protocol broker with transactions; tools/tansu.py) +
    moto_server on 127.0.0.1, owned by one scenario; its clients need librdkafka >= 2.2, so
    `libdir` (tools/librdkafka216) goes on the engine's LD_LIBRARY_PATH."""

    def __init__(self, ctx, work, topics):
        import tansu
        self.ctx = ctx
        self.work, self.topics = work, topics
        self.moto = None
        self.broker = tansu.Tansu(os.path.join(work, "tansu"), topics,
                                  start=lambda name, argv, log_path: ctx.procs.start(name, argv, log_path=log_path),
                                  stop=lambda p: ctx.procs.stop(p, timeout=10))

    def __enter__(self):
        import tansu
        os.makedirs(self.work, exist_ok=True)
        self.libdir = tansu.librdkafka_dir()
        port = free_port()
        self.s3 = f"http://127.0.0.1:{port}"
        self.moto = self.ctx.procs.start("moto_server", ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                                log_path=os.path.join(self.work, "moto.log"))
        try:
            self.broker.up()
            deadline = time.time() + 60
            while True:
                try:
                    urllib.request.urlopen(self.s3 + "/", timeout=2).read()
                    break
                except Exception:
                    if self.moto.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"moto_server did not start: {tail(os.path.join(self.work, 'moto.log'))}")
                    time.sleep(0.2)
        except BaseException:
            self.__exit__()
            raise
        self.bootstrap = self.broker.bootstrap
        return self

    def __exit__(self, *exc):
        self.broker.down()
        if self.moto is not None:
            self.ctx.procs.stop(self.moto, timeout=10)
        return False

    s3client = Stack.s3client
    bucket = Stack.bucket



class FaultProxy:
    """tools/s3_fault_proxy.py in front of moto, stopped by its PID."""

    def __init__(self, stack, work):
        self.ctx = stack.ctx
        self.log = os.path.join(work, "proxy.out")
        self.proc = self.ctx.procs.start("s3_fault_proxy", [sys.executable, os.path.join(self.ctx.tools, "s3_fault_proxy.py"),
                                                   "--upstream", stack.s3], log_path=self.log)
        deadline = time.time() + 20
        port = None
        while time.time() < deadline and port is None:
            m = re.search(r"PORT (\d+)", open(self.log).read())
            port = m and int(m.group(1))
            time.sleep(0.1)
        if port is None:
            raise RuntimeError("fault proxy did not start")
        self.url = f"http://127.0.0.1:{port}"

    def rules(self, r):
        req = urllib.request.Request(self.url + "/__proxy__/rules", data=json.dumps(r).encode(), method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self):
        self.ctx.procs.stop(self.proc)


