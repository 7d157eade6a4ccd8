"""A process of the tree that exits while the tree is being seized.

refcr seizes top down: a parent is stopped, then its children are listed
and seized one by one.  A child that exits in between cannot be seized
(PTRACE_SEIZE of a zombie is EPERM, of a reaped one ESRCH); it ended before
the freeze, so it is dumped as what it is now: a zombie its frozen parent
has not reaped, or nothing if the parent ignores SIGCHLD.  The dump failed
with "process N cannot be traced: Operation not permitted" (busy_fork00 in
the ns flavor under --zdtm-stress).  Here the child is killed right before
refcr's seize of it, every time.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import Processes
from test_cli_plain import REPO

from zdtm.harness import procs

# The parent reports its child's pid; on SIGUSR1 it writes what waitpid says of it.
TREE = r"""
import os, signal, sys
out, ignore = sys.argv[1], sys.argv[2] == "ignore"
if ignore:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
child = os.fork()
if child == 0:
    while True:
        signal.pause()
def report(text):
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.rename(out + ".tmp", out)
def reap(*_):
    try:
        pid, status = os.waitpid(child, os.WNOHANG)
        report(f"{pid} {status}")
    except ChildProcessError:
        report("none")
signal.signal(signal.SIGUSR1, reap)
report(f"child {child}")
while True:
    signal.pause()
"""

# refcr with the child killed right before its seize, and waited for until
# it is a zombie (its parent is frozen and cannot reap it) or gone.
KILLED_BEFORE_SEIZE = r"""
import os, sys, time
from refcr import dump
child, argv = int(sys.argv[1]), sys.argv[2:]
seize = dump.seize_thread
def seize_thread(tid):
    if tid == child:
        os.kill(child, 9)
        while True:
            try:
                with open(f"/proc/{child}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] in "ZX":
                        break
            except FileNotFoundError:
                break
            time.sleep(0.005)
    return seize(tid)
dump.seize_thread = seize_thread
from refcr.cli import main
sys.exit(main(argv))
"""


def _wait_report(out: Path, before: str = "") -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = out.read_text() if out.exists() else ""
        if text and text != before:
            return text
        time.sleep(0.01)
    raise TimeoutError(f"no report in {out}")


def _run(tmp_path: Path, *argv: str, child: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    script = [sys.executable, "-c", KILLED_BEFORE_SEIZE, str(child)] if child else [sys.executable, "-m", "refcr"]
    return subprocess.run([*script, *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.parametrize("sigchld", ["default", "ignore"])
def test_child_exits_before_its_seize(tmp_path: Path, processes: Processes, sigchld: str) -> None:
    out = tmp_path / "report"
    p = processes.spawn([sys.executable, "-c", TREE, str(out), sigchld], tmp_path)
    child = int(_wait_report(out).split()[1])
    res = _run(tmp_path, "dump", "-t", str(p.pid), "-D", str(tmp_path / "img"), "-o", "dump.log", "-v4",
               child=child)
    assert res.returncode == 0, res.stderr
    p.wait(timeout=10)
    if sigchld == "default":        # the zombie came to us (the subreaper) with its parent's death
        assert os.waitpid(child, 0) == (child, signal.SIGKILL)
    assert not procs.is_alive(child)
    res = _run(tmp_path, "restore", "-D", str(tmp_path / "img"), "-o", "restore.log", "-v4", "-d")
    assert res.returncode == 0, res.stderr
    processes.pids.add(p.pid)
    assert procs.is_alive(p.pid)
    before = out.read_text()
    os.kill(p.pid, signal.SIGUSR1)
    # the zombie is restored as one: its parent reaps it now, killed by SIGKILL
    want = f"{child} {signal.SIGKILL}" if sigchld == "default" else "none"
    assert _wait_report(out, before) == want
