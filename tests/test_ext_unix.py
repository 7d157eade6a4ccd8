"""Unix sockets connected to a peer outside the dumped tree: --ext-unix-sk
(dump and restore) and --inherit-fd socket:[INO]."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import Processes, assert_one_line_error
from zdtm.harness import procs

CLIENT = r"""
import signal, socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "dgram" else socket.SOCK_STREAM
s = socket.socket(socket.AF_UNIX, kind)
s.connect(sys.argv[2])
signal.signal(signal.SIGUSR1, lambda *a: s.send(b"hello from the tree\n"))
open(sys.argv[3], "w").write("ready")
while True:
    signal.pause()
"""


def refcr(*args: str, cwd: Path, pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=cwd, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, pass_fds=pass_fds, timeout=120)


def start_client(tmp_path: Path, processes: Processes, kind: str, path: Path) -> subprocess.Popen[bytes]:
    ready = tmp_path / "ready"
    p = processes.spawn([sys.executable, "-c", CLIENT, kind, str(path), str(ready)], tmp_path)
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline, "the client never got ready"
        assert p.poll() is None, "the client died"
        time.sleep(0.02)
    return p


def client_socket(pid: int) -> int:
    """The inode of the client's (only) socket."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
        if link.startswith("socket:["):
            return int(link[8:-1])
    raise AssertionError("the client holds no socket")


def dump(tmp_path: Path, pid: int, *opts: str, to: str = "img") -> subprocess.CompletedProcess[str]:
    return refcr("dump", "-t", str(pid), "-D", to, "-o", "dump.log", "-v4", *opts, cwd=tmp_path)


def restore(tmp_path: Path, *opts: str, pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    return refcr("restore", "-D", "img", "-o", "restore.log", "-v4", "-d", *opts, cwd=tmp_path,
                 pass_fds=pass_fds)


def recv_line(sk: socket.socket) -> bytes:
    sk.settimeout(10)
    return sk.recv(4096)


def test_ext_unix_dgram00(tmp_path: Path, processes: Processes) -> None:
    """A datagram socket connected to a syslog-like daemon outside the tree is
    dumped with the bare --ext-unix-sk and connected to the daemon again."""
    daemon = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    daemon.bind(str(tmp_path / "log.sock"))
    p = start_client(tmp_path, processes, "dgram", tmp_path / "log.sock")
    ino = client_socket(p.pid)

    res = dump(tmp_path, p.pid, to="refused")  # without the option: refused in one line
    assert_one_line_error(res)
    assert f"unix socket {ino}" in res.stderr and "outside the dumped tree" in res.stderr, res.stderr

    res = dump(tmp_path, p.pid, "--ext-unix-sk")
    assert res.returncode == 0, res.stderr
    p.wait(timeout=10)
    res = restore(tmp_path)
    assert res.returncode == 0, res.stderr
    os.kill(p.pid, signal.SIGUSR1)
    assert recv_line(daemon) == b"hello from the tree\n"
    daemon.close()


def test_ext_unix_stream00(tmp_path: Path, processes: Processes) -> None:
    """A stream connection to an outside listener: --ext-unix-sk ID at dump;
    at restore ID reconnects to the same listener, ID:PATH to another one."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(tmp_path / "srv.sock"))
    srv.listen(4)
    srv.settimeout(10)
    p = start_client(tmp_path, processes, "stream", tmp_path / "srv.sock")
    conn, _ = srv.accept()
    ino = client_socket(p.pid)

    res = dump(tmp_path, p.pid, "--ext-unix-sk", to="refused1")   # bare: datagram sockets only
    assert_one_line_error(res)
    assert f"unix socket {ino}" in res.stderr, res.stderr
    res = dump(tmp_path, p.pid, "--ext-unix-sk", str(ino), "--ext-unix-sk", "1", to="refused2")
    assert_one_line_error(res)
    assert "--ext-unix-sk 1:" in res.stderr, res.stderr

    res = refcr("dump", "-t", str(p.pid), "-D", "img", "-R", "--ext-unix-sk", str(ino), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = restore(tmp_path, "--ext-unix-sk", "1")          # not in the images: refused (the original runs on)
    assert_one_line_error(res)
    assert "--ext-unix-sk 1:" in res.stderr, res.stderr
    procs.kill_tree(p.pid, procs.own_session(p.pid))
    p.wait(timeout=10)
    conn.close()

    res = restore(tmp_path)                                 # a stream needs to be told
    assert_one_line_error(res)
    assert f"--ext-unix-sk {ino}" in res.stderr, res.stderr
    assert procs.read_stat(p.pid) is None

    res = restore(tmp_path, "--ext-unix-sk", str(ino))
    assert res.returncode == 0, res.stderr
    conn, _ = srv.accept()
    os.kill(p.pid, signal.SIGUSR1)
    assert recv_line(conn) == b"hello from the tree\n"
    procs.kill_tree(p.pid, procs.own_session(p.pid))
    procs.wait_exit(p.pid, 10)
    conn.close()

    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(tmp_path / "other.sock"))
    other.listen(4)
    other.settimeout(10)
    res = restore(tmp_path, "--ext-unix-sk", f"{ino}:{tmp_path / 'other.sock'}")
    assert res.returncode == 0, res.stderr
    conn, _ = other.accept()
    os.kill(p.pid, signal.SIGUSR1)
    assert recv_line(conn) == b"hello from the tree\n"
    conn.close()
    srv.close()
    other.close()


def test_ext_unix_inherit00(tmp_path: Path, processes: Processes) -> None:
    """The caller makes the connection itself and hands it in with
    --inherit-fd fd[N]:socket:[ID]."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(tmp_path / "srv.sock"))
    srv.listen(4)
    srv.settimeout(10)
    p = start_client(tmp_path, processes, "stream", tmp_path / "srv.sock")
    conn, _ = srv.accept()
    ino = client_socket(p.pid)
    res = dump(tmp_path, p.pid, "--ext-unix-sk", str(ino))
    assert res.returncode == 0, res.stderr
    p.wait(timeout=10)
    conn.close()
    srv.close()

    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    res = restore(tmp_path, "--inherit-fd", f"fd[{theirs.fileno()}]:socket:[{ino}]", pass_fds=(theirs.fileno(),))
    assert res.returncode == 0, res.stderr
    theirs.close()
    os.kill(p.pid, signal.SIGUSR1)
    assert recv_line(mine) == b"hello from the tree\n"
    mine.close()


def test_external_unix_option_is_ext_unix_sk(tmp_path: Path, processes: Processes) -> None:
    """--external unix[INO] at dump marks the socket external like --ext-unix-sk INO."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "peer.sock"))
    server.listen(1)
    p = start_client(tmp_path, processes, "stream", tmp_path / "peer.sock")
    conn, _ = server.accept()
    res = dump(tmp_path, p.pid, "--external", f"unix[{client_socket(p.pid)}]")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("option, says", [
    ("unix", "expected KIND[ID]"),
    ("unix[abc]", "expected unix[INO]"),
    ("bogus[1]", "expected KIND[ID]"),
    ("veth[eth0]", "not supported yet"),
    ("unix[12345]", "no unix socket 12345"),
])
def test_external_option_errors_at_dump(tmp_path: Path, processes: Processes, option: str, says: str) -> None:
    p = processes.spawn(["sleep", "1000"], tmp_path)
    time.sleep(0.1)
    res = dump(tmp_path, p.pid, "--external", option)
    assert_one_line_error(res)
    assert says in res.stderr, res.stderr
    assert procs.read_stat(p.pid).state == "S", "a refused dump must leave the process running"
