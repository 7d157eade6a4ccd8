"""The per-connection network lock (refcr/net/netlock.py) leaves nothing behind.

A process in the host's network namespace has a TCP connection to this test
(it echoes what it reads).  Dumped with --tcp-established:

* refcr SIGKILLed after the connection was locked and put into repair mode
  (REFCR_KILL_AT=dump-after-fds): its guardian takes the socket out of repair
  mode and deletes the lock's table; the connection echoes on;
* the same for a tree with a network namespace of its own (its whole-namespace
  lock, refcr_lock);
* a dump that fails after that (REFCR_FAULT=dump-before-write): the same, by
  refcr itself;
* a dump that completes: the table is there while the tree is down (the
  test's socket gets no RST when it sends then), the restore deletes it, and
  what the test sent meanwhile is echoed by the restored process.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import Processes

from zdtm.harness import procs

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin") is None,
                                reason="the network lock needs nft")


@pytest.fixture(scope="module")
def echo_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("netlock") / "echo"
    subprocess.run(["cc", "-O1", "-o", str(exe), str(HERE / "netlock" / "echo.c")], check=True)
    return exe


def tables(pid: int) -> list[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    return [line.split()[-1] for line in out.splitlines() if f"refcr_tcp_{pid}_" in line]


def connected(exe: Path, ps: Processes, cwd: Path) -> tuple[socket.socket, int]:
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    p = ps.spawn([str(exe), str(ls.getsockname()[1])], cwd)
    ls.settimeout(10)
    sk, _ = ls.accept()
    ls.close()
    sk.settimeout(30)
    assert echoed(sk, b"before")
    return sk, p.pid


def echoed(sk: socket.socket, data: bytes) -> bool:
    sk.sendall(data)
    got = b""
    while len(got) < len(data) and (chunk := sk.recv(len(data) - len(got))):
        got += chunk
    return got == data


def refcr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refcr", *args], text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120, env=env)


def dump(pid: int, images: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("REFCR_KILL_AT", "REFCR_FAULT")} | env
    return refcr("dump", "-t", str(pid), "-D", str(images), "-o", "log", "-v4", "--tcp-established", env=full)


def test_sigkill_of_refcr_unlocks_and_ends_repair(tmp_path: Path, processes: Processes, echo_bin: Path) -> None:
    sk, pid = connected(echo_bin, processes, tmp_path)
    res = dump(pid, tmp_path / "img", REFCR_KILL_AT="dump-after-fds")
    assert res.returncode == -signal.SIGKILL, res.stderr
    deadline = time.monotonic() + 10
    while tables(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not tables(pid), "the guardian left the lock's table"
    assert "connection 127.0.0.1" in (tmp_path / "img" / "log").read_text(), "the connection was never locked"
    assert echoed(sk, b"after the guardian"), "the connection does not work after refcr's death"


def test_failed_dump_unlocks(tmp_path: Path, processes: Processes, echo_bin: Path) -> None:
    sk, pid = connected(echo_bin, processes, tmp_path)
    res = dump(pid, tmp_path / "img", REFCR_FAULT="dump-before-write")
    assert res.returncode == 1, res.stderr
    assert "connection 127.0.0.1" in (tmp_path / "img" / "log").read_text(), "the connection was never locked"
    assert not tables(pid), "a failed dump left the lock's table"
    assert echoed(sk, b"after the failed dump")


def test_lock_holds_until_restore(tmp_path: Path, processes: Processes, echo_bin: Path) -> None:
    sk, pid = connected(echo_bin, processes, tmp_path)
    images = tmp_path / "img"
    res = dump(pid, images)
    assert res.returncode == 0, res.stderr
    procs.wait_exit(pid, 10)
    assert len(tables(pid)) == 1, "no lock while the tree is down"
    sk.sendall(b"while down")       # dropped, retransmitted after the restore: no RST
    time.sleep(0.3)
    res = refcr("restore", "-D", str(images), "-d", "-o", "rlog", "-v4")
    assert res.returncode == 0, res.stderr
    processes.pids.add(pid)
    assert not tables(pid), "the restore left the lock's table"
    got = b""
    while len(got) < len(b"while down") and (chunk := sk.recv(64)):
        got += chunk
    assert got == b"while down"
    assert echoed(sk, b"after the restore")


def test_sigkill_of_refcr_unlocks_own_netns(tmp_path: Path, processes: Processes) -> None:
    """A tree with a network namespace of its own: the whole-namespace lock
    (table refcr_lock there) is deleted by the guardian too."""
    p = processes.spawn(["unshare", "--net", "--", "sleep", "1000"], tmp_path)
    deadline = time.monotonic() + 10
    while os.readlink(f"/proc/{p.pid}/ns/net") == os.readlink("/proc/self/ns/net") and time.monotonic() < deadline:
        time.sleep(0.02)
    res = dump(p.pid, tmp_path / "img", REFCR_KILL_AT="dump-after-fds")
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert "network of" in (tmp_path / "img" / "log").read_text(), "the namespace was never locked"

    def listed() -> str:
        return subprocess.run(["nsenter", "-t", str(p.pid), "-n", "nft", "list", "tables"],
                              capture_output=True, text=True, check=True).stdout
    while "refcr_lock" in listed() and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    assert "refcr_lock" not in listed(), "the guardian left the namespace locked"
    assert procs.is_alive(p.pid)
