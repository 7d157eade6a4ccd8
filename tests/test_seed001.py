"""The seed-001 workflow: server A talks to client B over a stream unix
socket; A is checkpointed with --leave-running after every message, each
checkpoint into its own directory; later an older checkpoint of A is restored
against a fresh B (--ext-unix-sk ID:PATH) and A continues from that message."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from support import Processes
from zdtm.harness import procs

# A: keeps a running total of the numbers B sends it and answers with it.
SERVER_A = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
total = 0
f = s.makefile("rb", buffering=0)
while True:
    line = f.readline()
    if not line:
        break
    total += int(line)
    s.sendall(f"total {total}\n".encode())
"""


def refcr(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=cwd, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def listener(path: Path) -> socket.socket:
    b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    b.bind(str(path))
    b.listen(1)
    b.settimeout(10)
    return b


def ask(conn: socket.socket, n: int) -> str:
    conn.sendall(f"{n}\n".encode())
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(100)
        assert chunk, "A closed the connection"
        data += chunk
    return data.decode().strip()


def a_socket(pid: int) -> int:
    for fd in os.listdir(f"/proc/{pid}/fd"):
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
        if link.startswith("socket:["):
            return int(link[8:-1])
    raise AssertionError("A holds no socket")


def test_seed001_replay00(tmp_path: Path, processes: Processes) -> None:
    b = listener(tmp_path / "b1.sock")
    a = processes.spawn([sys.executable, "-c", SERVER_A, str(tmp_path / "b1.sock")], tmp_path)
    conn, _ = b.accept()
    conn.settimeout(10)
    sk = a_socket(a.pid)
    totals = []
    for i, n in enumerate((5, 7, 11, 13)):
        totals.append(ask(conn, n))
        res = refcr("dump", "-t", str(a.pid), "-D", f"ckpt{i}", "--leave-running",
                    "--ext-unix-sk", str(sk), cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    assert totals == ["total 5", "total 12", "total 23", "total 36"]
    os.kill(a.pid, 9)
    a.wait(timeout=10)
    conn.close()
    b.close()
    # Replay from the checkpoint taken after the second message, with a fresh B.
    b2 = listener(tmp_path / "b2.sock")
    res = refcr("restore", "-D", "ckpt1", "-d", "--ext-unix-sk", f"{sk}:{tmp_path / 'b2.sock'}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    conn2, _ = b2.accept()
    conn2.settimeout(10)
    assert ask(conn2, 100) == "total 112", "A did not continue from its second message"
    assert ask(conn2, 1) == "total 113"
    conn2.close()                      # A sees EOF and exits normally
    assert procs.wait_exit(a.pid, 10).status == 0
