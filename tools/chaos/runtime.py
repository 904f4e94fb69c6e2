"""The suite's run-time context: what used to be module globals of tools/chaos.py (ARGS, BIN,
PROCS, ROOT, TOOLS, AWS_ENV, FAILPOINTS), now one object that cli.main builds once and passes
to every scenario (and that stacks and deployments carry as `.ctx`)."""
import os
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
PRINT_LOCK = threading.Lock()


def say(*a):
    with PRINT_LOCK:
        print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


class Context:
    """Everything a scenario needs from the run: the parsed options (`args`), the directory of
    the etl-* executables (`bin`), the process registry (`procs`), the repository and tools
    directories, the AWS credentials moto accepts, and the engine's failpoint names."""

    def __init__(self, args, bin_dir, procs, root=ROOT, tools=TOOLS, aws_env=None):
        self.args = args
        self.bin = bin_dir
        self.procs = procs
        self.root = root
        self.tools = tools
        self.aws_env = dict(aws_env or AWS_ENV)
        self._failpoints = None

    @property
    def failpoints(self):
        """The engine's failpoint names in protocol order, from `etl-engine --list-failpoints`
        (the Failpoint enum in Sources/Pipeline/Failpoints.swift), read once."""
        if self._failpoints is None:
            self._failpoints = list_failpoints(self.bin)
        return self._failpoints


def list_failpoints(bin_dir):
    """`etl-engine --list-failpoints`: one name per line. Raises RuntimeError when the binary
    does not know the flag (built before it existed) or lists nothing."""
    exe = os.path.join(bin_dir, "etl-engine")
    r = subprocess.run([exe, "--list-failpoints"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    names = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
    if r.returncode != 0 or not names:
        raise RuntimeError(f"{exe} --list-failpoints exited {r.returncode} ({(r.stderr or r.stdout).strip()[-300:]}); "
                           "rebuild the executables (swift build)")
    return names
