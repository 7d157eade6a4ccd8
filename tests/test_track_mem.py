"""Incremental checkpoints from the command line: a pre-dump/dump chain of a
plain process, and the refusals (bad --prev-images-dir, a pre-dump given to
restore, a parent that vanished or was tampered with), each one line, with
the process untouched."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import Processes, assert_one_line_error
from test_cli_plain import refcr

from zdtm.harness import procs

# A process with 64 pages of known data; SIGUSR1 rewrites page k (k = 0, 1, ...)
# and reports how many it rewrote; SIGUSR2 writes out a digest of all pages.
TARGET = r"""
import hashlib, mmap, os, signal, sys
out = sys.argv[1]
area = mmap.mmap(-1, 64 * 4096)
for p in range(64):
    area[p * 4096:(p + 1) * 4096] = bytes([p]) * 4096
n = 0
def report(text):
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.rename(out + ".tmp", out)
def rewrite(*_):
    global n
    area[n * 4096:(n + 1) * 4096] = bytes([200 + n]) * 4096
    n += 1
    report(f"rewrote {n}")
def digest(*_):
    report(hashlib.sha256(area[:]).hexdigest())
signal.signal(signal.SIGUSR1, rewrite)
signal.signal(signal.SIGUSR2, digest)
report("ready")
while True:
    signal.pause()
"""


def _ask(pid: int, sig: int, out: Path, want: str | None = None) -> str:
    before = out.read_text() if out.exists() else ""
    os.kill(pid, sig)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = out.read_text() if out.exists() else ""
        if text != before or (want is not None and text == want):
            return text
        time.sleep(0.01)
    raise TimeoutError(f"process {pid} did not answer signal {sig}")


@pytest.fixture
def target(tmp_path: Path, processes: Processes):
    out = tmp_path / "state"
    p = processes.spawn([sys.executable, "-c", TARGET, str(out)], tmp_path)
    deadline = time.monotonic() + 20
    while not (out.exists() and out.read_text() == "ready"):
        assert time.monotonic() < deadline, "target not ready"
        time.sleep(0.01)
    return p.pid, out


@pytest.mark.parametrize("method", ["uffd", "hash"])
def test_chain_restores_each_moment(tmp_path: Path, target, processes: Processes, method: str):
    pid, out = target
    if method == "uffd" and "--track-mem method: uffd-wp" not in refcr("check", cwd=tmp_path).stdout:
        pytest.skip("this kernel cannot track written pages with uffd-wp (PAGEMAP_SCAN, 6.7+)")
    m = ["--track-mem-method", method]
    assert refcr("pre-dump", "-t", str(pid), "-D", "pre", *m, cwd=tmp_path).returncode == 0
    digests = []
    for i in (1, 2):
        _ask(pid, signal.SIGUSR1, out)
        digests.append(_ask(pid, signal.SIGUSR2, out))
        parent = "../pre" if i == 1 else f"../d{i - 1}"
        res = refcr("dump", "-t", str(pid), "-D", f"d{i}", "-R", "--track-mem", "--prev-images-dir", parent,
                    *m, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    os.kill(pid, signal.SIGKILL)
    assert not procs.wait_gone({pid}, 10)
    for i in (1, 2):
        res = refcr("restore", "-D", f"d{i}", "-d", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        processes.pids.add(pid)
        assert _ask(pid, signal.SIGUSR2, out, want=digests[i - 1]) == digests[i - 1], f"d{i}"
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert "anon_inode:[userfaultfd]" not in fds
        os.kill(pid, signal.SIGKILL)
        assert not procs.wait_gone({pid}, 10)
        procs.reap_zombie_children()


def test_refusals(tmp_path: Path, target):
    pid, out = target
    assert refcr("pre-dump", "-t", str(pid), "-D", "pre", cwd=tmp_path).returncode == 0
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    shutil.copytree(tmp_path / "pre", outside, symlinks=True)
    os.symlink(outside, tmp_path / "esc")       # a parent reached through a symlink out of the chain's home
    for n, bad in enumerate(["/etc", "../../x", "../nope", "../esc"]):
        res = refcr("dump", "-t", str(pid), "-D", f"bad{n}", "-R", "--prev-images-dir", bad, cwd=tmp_path)
        assert_one_line_error(res)
        assert "--prev-images-dir" in res.stderr
        assert procs.is_alive(pid)
    shutil.rmtree(outside)
    res = refcr("restore", "-D", "pre", cwd=tmp_path)
    assert_one_line_error(res)
    assert "pre-dump" in res.stderr
    _ask(pid, signal.SIGUSR1, out)
    assert refcr("dump", "-t", str(pid), "-D", "d1", "-R", "--prev-images-dir", "../pre",
                 cwd=tmp_path).returncode == 0
    assert procs.is_alive(pid) and _ask(pid, signal.SIGUSR1, out) == "rewrote 2"
    fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert "anon_inode:[userfaultfd]" not in fds, "a dump without --track-mem ends the tracking"
    os.kill(pid, signal.SIGKILL)
    assert not procs.wait_gone({pid}, 10)
    procs.reap_zombie_children()
    os.rename(tmp_path / "pre", tmp_path / "gone")
    res = refcr("restore", "-D", "d1", "-d", cwd=tmp_path)
    assert_one_line_error(res)
    assert "pre" in res.stderr and not procs.is_alive(pid)
    os.unlink(tmp_path / "d1" / "parent")
    os.symlink("/tmp", tmp_path / "d1" / "parent")
    res = refcr("restore", "-D", "d1", "-d", cwd=tmp_path)
    assert_one_line_error(res)
    assert "parent" in res.stderr and not procs.is_alive(pid)


def _head(work: Path, image: str, pid: int) -> dict:
    import json
    res = refcr("show", f"{image}/pagemap-{pid}.img", cwd=work)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["head"]


def test_uffd_older_parent_stores_everything(tmp_path: Path, target):
    """Tracking was re-armed by d1: a dump whose parent is pre (older) must
    not trust the scan, and stores every page."""
    pid, out = target
    if "--track-mem method: uffd-wp" not in refcr("check", cwd=tmp_path).stdout:
        pytest.skip("this kernel cannot track written pages with uffd-wp (PAGEMAP_SCAN, 6.7+)")
    m = ["--track-mem-method", "uffd"]
    assert refcr("pre-dump", "-t", str(pid), "-D", "pre", *m, cwd=tmp_path).returncode == 0
    _ask(pid, signal.SIGUSR1, out)
    for image, parent in (("d1", "../pre"), ("d2", "../pre"), ("d3", "../d2")):
        res = refcr("dump", "-t", str(pid), "-D", image, "-R", "--track-mem", "--prev-images-dir", parent, *m,
                    cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    assert int(_head(tmp_path, "d1", pid).get("pages_in_parent", 0)) > 0
    assert int(_head(tmp_path, "d2", pid).get("pages_in_parent", 0)) == 0, "older parent trusted"
    assert int(_head(tmp_path, "d3", pid).get("pages_in_parent", 0)) > 0


# A root and a child; an ended child is reaped at once (SIGCHLD ignored).
TREE = r"""
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
child = os.fork()
if child == 0:
    while True:
        signal.pause()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(child))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    signal.pause()
"""

# refcr pre-dump, with the child killed (and reaped) right after its pages
# were copied, before its pagemap image is written: a tree that runs on after
# the freeze may lose a process at any moment of the copy.
ENDS_AFTER_COPY = r"""
import os, sys, time
from refcr.mm import track
child, argv = int(sys.argv[1]), sys.argv[2:]
copied = track.ProcessTrack.write_digests
def write_digests(self, images):
    if self.pid == child:
        os.kill(child, 9)
        while os.path.exists(f"/proc/{child}"):
            time.sleep(0.005)
    copied(self, images)
track.ProcessTrack.write_digests = write_digests
from refcr.cli import main
sys.exit(main(argv))
"""


def test_pre_dump_child_ends_during_copy(tmp_path: Path, processes: Processes):
    """A process of the tree that ends after the thaw, while the pre-dump
    copies pages, is left out of the images; the pre-dump succeeds (it failed
    with "no such process": the tracker read the process's start time from
    /proc after the copy, which also gave a reused pid's start time)."""
    out = tmp_path / "child"
    p = processes.spawn([sys.executable, "-c", TREE, str(out)], tmp_path)
    deadline = time.monotonic() + 20
    while not out.exists():
        assert time.monotonic() < deadline, "tree not ready"
        time.sleep(0.01)
    child = int(out.read_text())
    env = dict(os.environ, REFCR_TRACK_MEM_METHOD="uffd")
    res = subprocess.run([sys.executable, "-c", ENDS_AFTER_COPY, str(child), "pre-dump", "-t", str(p.pid),
                          "-D", str(tmp_path / "pre"), "-o", "log", "-v4"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert not Path(f"/proc/{child}").exists()
    assert procs.read_stat(p.pid).state not in ("t", "T", "Z")
