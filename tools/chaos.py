#!/usr/bin/env python3
"""Tidemark's crash and fault suite (issue #10): the entry point of the tools/chaos/ package.

  tools/chaos.py [--short] [--only a,b] [--bin DIR] [--out DIR] [--seed N] [--jobs N] [--keep] [--allow-not-run]

See `tools/chaos.py --help`, tools/chaos/__init__.py (the package layout) and docs/reliability.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
