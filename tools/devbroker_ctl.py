#!/usr/bin/env python3
"""Send fault-injection commands to a dev broker started with `etl-devbroker --control PATH`
(tools/stack passes $TIDEMARK_STACK_DIR/kafka.control).

  devbroker_ctl.py SOCKET 'broker-down 1' ['broker-up 1' ...]

Prints each answer ("ok" or "error <text>"); exits 1 when any answer is an error. The protocol
is described in `etl-devbroker --help` and docs/operations.md.
"""
import socket
import sys


def send(path, commands, timeout=10.0):
    """Returns the answer line of each command, in order."""
    answers = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        f = s.makefile("rwb")
        for c in commands:
            f.write(c.strip().encode() + b"\n")
            f.flush()
            answers.append(f.readline().decode().strip())
    return answers


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    answers = send(sys.argv[1], sys.argv[2:])
    for a in answers:
        print(a)
    return 0 if all(a == "ok" for a in answers) else 1


if __name__ == "__main__":
    sys.exit(main())
