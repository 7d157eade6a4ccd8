"""Restore right after dump, while the dumped process is still a zombie.

`refcr dump` kills the tree; until its parent reaps it, a dumped process is
a zombie that holds its pid, and a restore cannot take the pid back.  The
restore waits a bounded time (pstree.ZOMBIE_WAIT) for the zombie to be
reaped, and if it is not, names it and its parent in one line.  Here the
test process is the parent, so it decides when the zombie goes.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from support import Processes, assert_one_line_error
from test_cli_plain import REPO, refcr

from refcr.kernel.pstree import ZOMBIE_WAIT
from zdtm.harness import procs


def dumped_zombie(tmp_path: Path, processes: Processes) -> subprocess.Popen[bytes]:
    """A `sleep` of ours, dumped (so killed) and left unreaped."""
    p = processes.spawn(["sleep", "1000"], tmp_path)
    time.sleep(0.2)
    res = refcr("dump", "-t", str(p.pid), "-D", str(tmp_path / "img"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    st = procs.read_stat(p.pid)
    assert st is not None and st.state == "Z", f"dumped {p.pid} is not a zombie of ours: {st}"
    return p


def test_unreaped_zombie_is_named(tmp_path: Path, processes: Processes) -> None:
    p = dumped_zombie(tmp_path, processes)
    t0 = time.monotonic()
    res = refcr("restore", "-D", str(tmp_path / "img"), "-d", cwd=tmp_path)
    waited = time.monotonic() - t0
    assert_one_line_error(res)
    assert res.stderr.strip() == (f"refcr: error: pid {p.pid} is a zombie of process {os.getpid()} "
                                  "(not yet reaped by it)")
    assert waited >= ZOMBIE_WAIT, f"gave up after {waited:.1f} s"
    p.wait(timeout=10)
    assert not procs.is_alive(p.pid)


def test_zombie_reaped_while_restore_waits(tmp_path: Path, processes: Processes) -> None:
    p = dumped_zombie(tmp_path, processes)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    restore = subprocess.Popen([sys.executable, "-m", "refcr", "restore", "-D", str(tmp_path / "img"), "-d",
                                "-o", str(tmp_path / "restore.log"), "-v3"], cwd=tmp_path, env=env,
                               stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "restore.log"
    deadline = time.monotonic() + 30
    while not (log.exists() and "waiting up to" in log.read_text()):     # the restore waits now
        assert restore.poll() is None and time.monotonic() < deadline, \
            f"restore did not wait: {restore.communicate()[1]}"
        time.sleep(0.05)
    p.wait(timeout=10)       # reaped: the pid is free
    _, err = restore.communicate(timeout=60)
    assert restore.returncode == 0, err
    st = procs.read_stat(p.pid)
    assert st is not None and st.state == "S", f"restored {p.pid}: {st}"
