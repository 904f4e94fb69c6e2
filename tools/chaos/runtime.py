"""The suite's run-time context: what used to be module globals of tools/chaos.py (ARGS, BIN,
PROCS, ROOT, TOOLS, AWS_ENV, FAILPOINTS), now one object that cli.main builds once and passes
to every scenario (and that stacks and deployments carry as `.ctx`)."""
import os
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
FAILPOINTS = ["after_stage_write", "after_manifest_staged", "after_upload_create", "after_part_upload",
              "before_upload_complete", "after_upload_complete", "after_manifest_uploaded",
              "before_offset_commit", "after_offset_commit", "after_manifest_committed"]
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

    @property
    def failpoints(self):
        """The engine's failpoint names in protocol order."""
        return list(FAILPOINTS)
