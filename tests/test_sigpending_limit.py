"""Queued signals come back whatever RLIMIT_SIGPENDING the image has.

The kernel takes a sigqueue()d signal only while the pending signals of the
receiver's user, every process of that user together, are below the
*receiver's* RLIMIT_SIGPENDING.  A process with a low limit and signals
pending at the dump must get them back even when other processes of its user
hold more pending signals than that limit at the restore: refcr queues them
before it sets the limit (kernel/rlimits.py LATE).  When refcr's own limit is
the one reached, the restore ends with one line naming the limit and
nothing left running.
"""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from support import Processes, assert_one_line_error
from test_cli_plain import REPO, TIMEOUT

from zdtm.harness import procs

QUEUE = r"""
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
def sigqueue_self(n):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGRTMIN})
    for i in range(n):
        if libc.sigqueue(os.getpid(), int(signal.SIGRTMIN), ctypes.c_void_p(i + 1)) != 0:
            raise OSError(ctypes.get_errno(), "sigqueue")
def report(out, text):
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.rename(out + ".tmp", out)
"""

# 4 SIGRTMIN queued with sigqueue (si_code SI_QUEUE), then RLIMIT_SIGPENDING 16;
# SIGUSR1: take them and write how many and their si_code.
TARGET = QUEUE + r"""
import resource, sys
out = sys.argv[1]
sigqueue_self(4)
resource.setrlimit(resource.RLIMIT_SIGPENDING, (16, 16))
def take(*_):
    got = []
    while (si := signal.sigtimedwait({signal.SIGRTMIN}, 0)) is not None:
        got.append(si.si_code)
    report(out, f"{len(got)} {sorted(set(got))}")
signal.signal(signal.SIGUSR1, take)
report(out, "ready")
while True:
    signal.pause()
"""

# another process of root with 64 signals pending
HOG = QUEUE + r"""
import sys
sigqueue_self(64)
report(sys.argv[1], "ready")
while True:
    signal.pause()
"""


def _wait(out: Path, want: str | None = None, before: str = "") -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = out.read_text() if out.exists() else ""
        if text and text != before and (want is None or text == want):
            return text
        time.sleep(0.01)
    raise TimeoutError(f"{out}: {out.read_text() if out.exists() else 'nothing'}")


def _refcr(tmp_path: Path, *args: str, sigpending: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if sigpending is not None:
            resource.setrlimit(resource.RLIMIT_SIGPENDING, (sigpending, sigpending))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                          preexec_fn=limit)


def _dumped_with_hog(tmp_path: Path, processes: Processes) -> tuple[int, Path]:
    out = tmp_path / "target"
    p = processes.spawn([sys.executable, "-c", TARGET, str(out)], tmp_path)
    _wait(out, "ready")
    res = _refcr(tmp_path, "dump", "-t", str(p.pid), "-D", str(tmp_path / "img"), "-o", "dump.log")
    assert res.returncode == 0, res.stderr
    p.wait(timeout=10)
    hog = tmp_path / "hog"
    processes.spawn([sys.executable, "-c", HOG, str(hog)], tmp_path)
    _wait(hog, "ready")
    return p.pid, out


def test_signals_back_under_a_low_limit(tmp_path: Path, processes: Processes) -> None:
    pid, out = _dumped_with_hog(tmp_path, processes)
    res = _refcr(tmp_path, "restore", "-D", str(tmp_path / "img"), "-o", "restore.log", "-d")
    assert res.returncode == 0, res.stderr
    processes.pids.add(pid)
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert any(line.startswith("Max pending signals") and line.split()[3:5] == ["16", "16"]
               for line in limits.splitlines()), limits
    os.kill(pid, signal.SIGUSR1)
    assert _wait(out, before="ready") == "4 [-1]"


def test_refcr_limit_reached_is_one_line(tmp_path: Path, processes: Processes) -> None:
    pid, _ = _dumped_with_hog(tmp_path, processes)
    res = _refcr(tmp_path, "restore", "-D", str(tmp_path / "img"), "-o", "restore.log", "-d", sigpending=16)
    assert_one_line_error(res)
    assert "RLIMIT_SIGPENDING" in res.stderr, res.stderr
    assert not procs.is_alive(pid)
