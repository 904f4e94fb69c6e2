"""What the `make bench` scripts share: run a command (or stop with its output), build the release
binaries, bring a bench stack up and down, create a bucket, produce log records.

Each bench owns its stack directory (.stack-bench*/), so a stack started by hand (tools/stack up)
or by `make test` is never touched.
"""
import contextlib
import os
import subprocess
import sys
import tempfile
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# moto accepts any credentials; boto3, awscli and etl-engine read these.
AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


def run(cmd, env=None, check=True, cwd=ROOT):
    """Runs `cmd`, capturing its output; when `check` and it fails, exits naming the command."""
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if check and p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return p


def release_binaries(skip_build=False):
    """Builds the release products (unless `skip_build`) and returns their directory."""
    if not skip_build:
        run(["swift", "build", "-c", "release"])
    return run(["swift", "build", "-c", "release", "--show-bin-path"]).stdout.strip()


class Stack:
    """A running bench stack: the dev broker and moto_server on 127.0.0.1."""

    def __init__(self, directory, env):
        self.directory = directory
        self.env = env
        self.bootstrap = self._read("kafka.bootstrap")
        self.endpoint = self._read("s3.endpoint")

    def _read(self, name):
        with open(os.path.join(self.directory, name)) as f:
            return f.read().strip()

    def create_bucket(self, bucket):
        run([sys.executable, "-c", f"import boto3; boto3.client('s3', endpoint_url='{self.endpoint}', "
             f"region_name='us-east-1').create_bucket(Bucket='{bucket}')"], env=self.env)

    def produce(self, topic, count, partitions, partition_major=False):
        """Produces `count` records of tools/produce_logs.py into this stack's broker."""
        produce(self.bootstrap, topic, count, partitions, partition_major, env=self.env)


def engine_config(work, bootstrap, topic, group_prefix, kafka="", sink="", batch=""):
    """Writes WORK/t.toml for one bench engine: `topic` from `bootstrap` in a fresh group
    (`group_prefix`-<random>), session_timeout 6 s, a file:// sink at WORK/lake, staging and
    manifest under WORK; `kafka`, `sink` and `batch` are extra TOML lines for those sections.
    Returns the path."""
    conf = os.path.join(work, "t.toml")
    with open(conf, "w") as f:
        f.write(f'[kafka]\nbrokers = "{bootstrap}"\ntopics = ["{topic}"]\n'
                f'group_id = "{group_prefix}-{uuid.uuid4().hex[:8]}"\nsession_timeout = "6s"\n{kafka}'
                f'[sink]\nurl = "file://{work}/lake"\n{sink}'
                f'[staging]\ndir = "{work}/staging"\nmanifest = "{work}/state/manifest.sqlite"\n'
                + (f'[batch]\n{batch}' if batch else ""))
    return conf


def produce(bootstrap, topic, count, partitions, partition_major=False, env=None):
    """Produces `count` records of tools/produce_logs.py; partition-major fills partition 0
    first, then 1, ... (as a backlog that built up one partition at a time)."""
    cmd = [sys.executable, os.path.join(ROOT, "tools/produce_logs.py"), "--bootstrap", bootstrap,
           "--topic", topic, "--count", str(count), "--partitions", str(partitions)]
    if partition_major:
        cmd += ["--partition-major", "--linger-ms", "100"]
    run(cmd, env=env)


@contextlib.contextmanager
def local_stack(name, topics, binp):
    """Brings up the stack in ROOT/`name` with `topics` ("topic:partitions,...") on the release
    dev broker in `binp`, yields a ``Stack``, and takes it down again (also on failure)."""
    directory = os.path.join(ROOT, name)
    env = dict(os.environ, **AWS_TEST_ENV, TIDEMARK_STACK_DIR=directory, TIDEMARK_STACK_TOPICS=topics,
               TIDEMARK_DEVBROKER=os.path.join(binp, "etl-devbroker"))
    stack_tool = os.path.join(ROOT, "tools/stack")
    run([stack_tool, "down"], env=env, check=False)  # a stack left over by an interrupted bench
    try:
        run([stack_tool, "up"], env=env)  # inside the try: a half-started stack is taken down too
        yield Stack(directory, env)
    finally:
        run([stack_tool, "down"], env=env, check=False)


@contextlib.contextmanager
def zero_delay_broker(topics):
    """Starts bench/zero_delay_broker.py with `topics` ("topic:partitions,..."): a broker whose new
    consumer groups join at once (no initial rebalance delay). Yields its bootstrap address and
    stops the process by its PID (also on failure)."""
    log = tempfile.TemporaryFile(mode="w+")  # librdkafka's log lines; a pipe could fill and stall it
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench/zero_delay_broker.py"), "--topics", topics],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        bootstrap = proc.stdout.readline().strip()
        if not bootstrap:
            proc.wait(timeout=10)
            log.seek(0)
            sys.exit(f"bench: zero_delay_broker.py did not start ({proc.returncode}):\n{log.read()[-2000:]}")
        yield bootstrap
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
