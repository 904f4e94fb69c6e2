"""Child processes: the registry that stops every child by its PID (never by name), and the
run / run_capture helpers."""
import os
import signal
import socket
import subprocess
import threading


class Procs:
    """Every child the suite starts, so that each is stopped by its PID (never by name)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = {}
        self.closed = False

    def start(self, name, argv, log_path=None, env=None, stdout=None):
        if self.closed:
            raise RuntimeError("the suite is stopping (interrupted)")
        e = dict(os.environ)
        e.update(env or {})
        if log_path:
            out, err = open(log_path, "ab"), subprocess.STDOUT
        else:
            out, err = (stdout if stdout is not None else subprocess.DEVNULL), None
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=e, start_new_session=True)
        p.name = name
        p.log_path = log_path
        with self.lock:
            self.live[p.pid] = p
        return p

    def forget(self, p):
        with self.lock:
            self.live.pop(p.pid, None)

    @staticmethod
    def _send(p, *sigs):
        """Sends the signals to the child's PID in order; a child that already exited is fine."""
        try:
            for sig in sigs:
                os.kill(p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, p, sig=signal.SIGTERM, timeout=20.0):
        """Stops one child by PID: SIGCONT (it may be SIGSTOPped), the signal, then SIGKILL."""
        if p.poll() is None:
            self._send(p, signal.SIGCONT, sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                self._send(p, signal.SIGKILL)
        p.wait()
        self.forget(p)
        return p.returncode

    def kill9(self, p):
        if p.poll() is None:
            self._send(p, signal.SIGKILL)
        p.wait()
        self.forget(p)
        return p.returncode

    def wait(self, p, timeout):
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(p, timeout=5)
            raise
        self.forget(p)
        return rc

    def stop_all(self):
        with self.lock:
            self.closed = True
            procs = list(self.live.values())
        for p in procs:
            self.stop(p, timeout=5)


def run(procs, name, argv, log_path, env=None, timeout=300):
    """Runs a child to completion (stopped by PID on timeout); returns (rc, output text)."""
    p = procs.start(name, argv, log_path=log_path, env=env)
    try:
        rc = procs.wait(p, timeout)
    except subprocess.TimeoutExpired:
        return -999, tail(log_path) + f"\n[chaos] {name}: timed out after {timeout}s and was stopped"
    return rc, tail(log_path, 1 << 20)


def run_capture(procs, name, argv, env=None, timeout=300, log_path=None):
    """Runs a child with stdout captured separately from stderr (for --json); returns (rc, out, err)."""
    if procs.closed:
        raise RuntimeError("the suite is stopping (interrupted)")
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                         start_new_session=True)
    p.name = name
    with procs.lock:
        procs.live[p.pid] = p
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        procs.stop(p, timeout=5)
        out, err = p.communicate()
        return -999, out.decode(errors="replace"), err.decode(errors="replace") + f"\n[chaos] timed out after {timeout}s"
    finally:
        procs.forget(p)
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    if log_path:
        with open(log_path, "a") as f:
            f.write(f"$ {' '.join(argv)}\n--- stdout\n{out}\n--- stderr\n{err}\n--- rc {p.returncode}\n")
    return p.returncode, out, err


def tail(path, n=4000):
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - n))
        return f.read().decode(errors="replace")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

