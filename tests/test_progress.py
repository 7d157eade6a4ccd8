"""The progress bar of long dumps and restores (refcr/log.py: progress).

A process with 1 GiB of written memory is dumped and restored with stderr on
a pty: the bar shows pages copied of the total, the processes done and an
ETA.  The same dump with stderr not a terminal, or with -v0, prints nothing.
REFCR_PROGRESS_DELAY=0 makes the bar appear at once (by default it waits
1 s, and a 1 GiB dump may be faster than that on a quiet machine).
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import pexpect
import pytest
from support import Processes
from test_cli_plain import REPO, refcr

from zdtm.harness import procs

# a pexpect pty is one of the host's pty indexes: with the zdtm terminal items
# (zdtm/harness/plugin.py), one after another on one worker
pytestmark = pytest.mark.xdist_group("terminals")

BIG = r"""
import sys, time
data = bytearray(b"\x5a") * (%d << 20)       # written: every page present
open(sys.argv[1], "w").close()
while True:
    time.sleep(1)
"""
FRAME = re.compile(rb"(dump|restore): +\d+%\|[^|]*\| *[\d.]+k?/[\d.]+k? "     # pages done of the total
                   rb"\[\d\d:\d\d<\d\d:\d\d, [^,\]]+, [01]/1 processes\]")


def start(tmp_path: Path, processes: Processes, mib: int) -> int:
    ready = tmp_path / "ready"
    p = processes.spawn([sys.executable, "-c", BIG % mib, str(ready)], tmp_path)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert p.poll() is None and time.monotonic() < deadline, "workload did not start"
        time.sleep(0.05)
    return p.pid


def in_pty(*args: str, cwd: Path) -> tuple[int, bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO), REFCR_PROGRESS_DELAY="0", COLUMNS="150")
    child = pexpect.spawn(sys.executable, ["-m", "refcr", *args], cwd=str(cwd), env=env, timeout=180,
                          dimensions=(40, 150))
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


def frames(out: bytes, what: bytes) -> list[bytes]:
    return [m.group(0) for m in FRAME.finditer(out) if m.group(1) == what]


def test_progress_on_1gib_dump_and_restore(tmp_path: Path, processes: Processes) -> None:
    pid = start(tmp_path, processes, 1024)
    status, out = in_pty("dump", "-t", str(pid), "-D", str(tmp_path / "img"), cwd=tmp_path)
    assert status == 0, out[-2000:]
    dumps = frames(out, b"dump")
    assert dumps, f"no progress bar in {out[-2000:]!r}"
    assert any(b"0/1 processes" in f and not f.startswith(b"dump:   0%") for f in dumps), dumps
    assert re.search(rb"/2\d\dk", dumps[-1]), f"total is not ~262k pages: {dumps[-1]!r}"
    procs.wait_exit(pid, 10)
    status, out = in_pty("restore", "-D", str(tmp_path / "img"), "-d", cwd=tmp_path)
    assert status == 0, out[-2000:]
    assert frames(out, b"restore"), f"no progress bar in {out[-2000:]!r}"
    assert procs.is_alive(pid)
    shutil.rmtree(tmp_path / "img")         # 1 GiB that pytest would keep


def test_no_progress_off_a_terminal_or_at_v0(tmp_path: Path, processes: Processes) -> None:
    pid = start(tmp_path, processes, 64)
    os.environ["REFCR_PROGRESS_DELAY"] = "0"
    try:
        res = refcr("dump", "-t", str(pid), "-D", str(tmp_path / "img1"), "-R", cwd=tmp_path)
    finally:
        del os.environ["REFCR_PROGRESS_DELAY"]
    assert res.returncode == 0 and res.stderr == "", res.stderr
    status, out = in_pty("dump", "-t", str(pid), "-D", str(tmp_path / "img2"), "-R", "-v0", cwd=tmp_path)
    assert status == 0 and out.strip() == b"", out
