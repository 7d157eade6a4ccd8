"""--skip-in-flight and --tcp-close (net/inet.py): CRIU's options for TCP
connections refcr does not carry over.  Whole-program tests: a Python
process holds the sockets, is dumped and restored, and reports what its
sockets do after the restore (SIGUSR1) into a file."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from support import Processes, assert_one_line_error
from test_engine import dump, run, state

# argv: report file.  Holds a listener (its port in REPORT.port) and, with
# "pair", a client connected to it and the accepted end.  At SIGUSR1 it
# writes one line per check into REPORT.
CHILD = r"""
import errno, os, signal, socket, sys
report = sys.argv[1]
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(8)
pair = []
if "pair" in sys.argv:
    c = socket.create_connection(l.getsockname()); a, _ = l.accept()
    c.sendall(b"queued"); pair = [("client", c), ("accepted", a)]
with open(report + ".port.tmp", "w") as f:
    f.write(str(l.getsockname()[1]))
os.rename(report + ".port.tmp", report + ".port")
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
signal.sigwait([signal.SIGUSR1])
out = []
for name, s in pair:
    try:
        s.getpeername(); out.append(f"{name} connected")
    except OSError as e:
        out.append(f"{name} {errno.errorcode[e.errno]}")
    try:
        s.send(b"x", socket.MSG_NOSIGNAL); out.append(f"{name} sent")
    except OSError as e:
        out.append(f"{name} send {errno.errorcode[e.errno]}")
l.settimeout(5)
try:
    conn, _ = l.accept(); conn.settimeout(5); out.append("accepted " + conn.recv(16).decode())
except OSError as e:
    out.append(f"accept {e}")
with open(report, "w") as f:
    f.write("\n".join(out) + "\n")
"""


def start(processes: Processes, tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    report = tmp_path / "report"
    p = processes.spawn([sys.executable, "-c", CHILD, str(report), *args], tmp_path)
    port_file = tmp_path / "report.port"
    deadline = time.monotonic() + 10
    while not port_file.exists():
        assert time.monotonic() < deadline and p.poll() is None, "the child did not start"
        time.sleep(0.01)
    return p, int(port_file.read_text())


def restore(images: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run("restore", "-D", str(images), "-o", "restore.log", "-v4", "-d", *extra, cwd=images.parent)


def verdict(pid: int, tmp_path: Path, port: int) -> list[str]:
    """Connect anew, send 'new', let the child check and report."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"new")
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        report = tmp_path / "report"
        while not report.exists() or not report.read_text().endswith("\n"):
            assert time.monotonic() < deadline, "the restored child did not report"
            time.sleep(0.02)
    return report.read_text().splitlines()


def test_in_flight_connection_refused_then_skipped(tmp_path: Path, processes: Processes) -> None:
    p, port = start(processes, tmp_path)
    waiting = socket.create_connection(("127.0.0.1", port), timeout=5)     # in the accept queue
    try:
        res = dump(p.pid, tmp_path / "img0")
        assert_one_line_error(res)
        assert res.returncode == 1 and "accept queue" in res.stderr and "--skip-in-flight" in res.stderr
        assert state(p.pid) in ("S", "R"), "the refused dump must leave the process running"
        res = dump(p.pid, tmp_path / "img", "--skip-in-flight")
        assert res.returncode == 0, res.stderr
        assert "not yet accepted are dropped" in (tmp_path / "img" / "dump.log").read_text()
        p.wait(10)              # the dumped child's zombie, ours to reap
        res = restore(tmp_path / "img")
        assert res.returncode == 0, res.stderr
        # the connection that waited is gone: the first one accepted is the new one
        assert verdict(p.pid, tmp_path, port) == ["accepted new"]
    finally:
        waiting.close()


def test_tcp_close(tmp_path: Path, processes: Processes) -> None:
    p, port = start(processes, tmp_path, "pair")
    res = dump(p.pid, tmp_path / "img0", "--leave-running")
    assert_one_line_error(res)
    assert "--tcp-established" in res.stderr and "--tcp-close" in res.stderr
    res = dump(p.pid, tmp_path / "img", "--tcp-close")
    assert res.returncode == 0, res.stderr
    p.wait(10)
    res = restore(tmp_path / "img")
    assert_one_line_error(res)
    assert res.returncode == 1 and "restore it with --tcp-close" in res.stderr
    res = restore(tmp_path / "img", "--tcp-close")
    assert res.returncode == 0, res.stderr
    assert verdict(p.pid, tmp_path, port) == [
        "client ENOTCONN", "client send EPIPE", "accepted ENOTCONN", "accepted send EPIPE", "accepted new"]
