"""Tidemark's crash and fault suite as a package; tools/chaos.py is its entry point.

  runtime       Context: the options, the etl-* binaries, the process registry, paths, failpoint names
  processes     Procs (every child stopped by PID), run / run_capture, tail, free_port
  stack         Stack (dev broker + moto), TansuStack (Tansu + moto), FaultProxy (s3_fault_proxy.py)
  deployment    Deployment (one engine's config, staging, manifest, sink), produce
  verification  verify (verify_sink.py), committed offsets, watermarks, delivered offsets, manifest readers
  scenarios/    one module per scenario, SCENARIOS in run order
  report        Result, the results table, results.md and docs/reliability.md
  cli           the command line (options, runner, exit status)
"""
import os
import sys

# The sibling tools (devbroker_ctl, tansu, verify_sink) are imported by name.
_TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _TOOLS not in sys.path:
    sys.path.insert(0, _TOOLS)
