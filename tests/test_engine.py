"""Engine guarantees that zdtm scenarios cannot show from inside a process:
what goes into the images, and what a failed dump or restore leaves behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import Processes, assert_one_line_error

from refcr.images.imagedir import ImageDir
from zdtm.harness import procs

PAGE = 4096
TIMEOUT = 120

SPARSE = r"""
import mmap, ctypes, sys, time
private = mmap.mmap(-1, 64 << 20, flags=mmap.MAP_PRIVATE)
shared = mmap.mmap(-1, 64 << 20, flags=mmap.MAP_SHARED)
for area in (private, shared):
    for page in (0, 5000, 16383):
        area[page * 4096] = 0x5a
addr = [ctypes.addressof(ctypes.c_char.from_buffer(a)) for a in (private, shared)]
with open(sys.argv[1], "w") as f:
    f.write(f"{addr[0]} {addr[1]}\n")
while True:
    time.sleep(1)
"""


def run(*args: str, cwd: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("REFCR_FAULT", None)
    if fault:
        env["REFCR_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT)


def spawn_sleep(ps: Processes, cwd: Path) -> subprocess.Popen[bytes]:
    p = ps.spawn(["sleep", "1000"], cwd)
    time.sleep(0.1)
    return p


def dump(pid: int, images: Path, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    return run("dump", "-t", str(pid), "-D", str(images), "-o", "dump.log", "-v4", *extra,
               cwd=images.parent, fault=fault)


def restore(images: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    return run("restore", "-D", str(images), "-o", "restore.log", "-v4", "-d", cwd=images.parent, fault=fault)


def state(pid: int) -> str | None:
    st = procs.read_stat(pid)
    return st.state if st else None


def test_only_touched_pages_are_dumped(tmp_path: Path, processes: Processes) -> None:
    addr_file = tmp_path / "addr"
    p = processes.spawn([sys.executable, "-c", SPARSE, str(addr_file)], tmp_path)
    deadline = time.monotonic() + 10
    while not addr_file.exists() or not addr_file.read_text().endswith("\n"):
        assert time.monotonic() < deadline, "sparse process did not start"
        time.sleep(0.01)
    start, shared = (int(x) for x in addr_file.read_text().split())
    res = dump(p.pid, tmp_path / "img", "--leave-running")
    assert res.returncode == 0, res.stderr
    images = ImageDir(str(tmp_path / "img"))
    _, entries = images.read_head("pagemap", id=p.pid)
    inside = [(e.vaddr, e.nr_pages) for e in entries if start <= e.vaddr < start + (64 << 20)]
    assert inside == [(start, 1), (start + 5000 * PAGE, 1), (start + 16383 * PAGE, 1)]
    shmid = os.stat(f"/proc/{p.pid}/map_files/{shared:x}-{shared + (64 << 20):x}").st_ino
    _, entries = images.read_head("pagemap-shmem", id=shmid)
    assert [(e.vaddr, e.nr_pages) for e in entries] == [(0, 1), (5000 * PAGE, 1), (16383 * PAGE, 1)]
    assert state(p.pid) in ("S", "R"), "--leave-running must leave the process running"


def test_leave_stopped(tmp_path: Path, processes: Processes) -> None:
    p = spawn_sleep(processes, tmp_path)
    assert dump(p.pid, tmp_path / "img", "--leave-stopped").returncode == 0
    assert state(p.pid) == "T"


def test_restore_onto_a_busy_pid_is_refused(tmp_path: Path, processes: Processes) -> None:
    p = spawn_sleep(processes, tmp_path)
    assert dump(p.pid, tmp_path / "img", "--leave-running").returncode == 0
    res = restore(tmp_path / "img")
    assert_one_line_error(res)
    assert f"pid {p.pid} is in use" in res.stderr
    assert state(p.pid) == "S", "the process holding the pid must be untouched"


@pytest.mark.parametrize("fault", ["restore-after-fork", "restore-after-memory", "restore-before-detach"])
def test_failed_restore_leaves_nothing(tmp_path: Path, processes: Processes, fault: str) -> None:
    p = spawn_sleep(processes, tmp_path)
    assert dump(p.pid, tmp_path / "img").returncode == 0
    p.wait(timeout=10)
    assert_one_line_error(restore(tmp_path / "img", fault=fault))
    assert state(p.pid) is None, f"a puppet survived the failed restore ({fault})"
    assert restore(tmp_path / "img").returncode == 0, "the images must still restore afterwards"
    assert state(p.pid) == "S"


def test_failed_dump_resumes_and_marks_images(tmp_path: Path, processes: Processes) -> None:
    p = spawn_sleep(processes, tmp_path)
    before = Path(f"/proc/{p.pid}/maps").read_text()
    res = dump(p.pid, tmp_path / "img", fault="dump-after-memory")
    assert_one_line_error(res)
    assert state(p.pid) == "S" and Path(f"/proc/{p.pid}/maps").read_text() == before
    res = restore(tmp_path / "img")
    assert_one_line_error(res)
    assert "failed dump" in res.stderr


def test_corrupt_image_is_refused(tmp_path: Path, processes: Processes) -> None:
    p = spawn_sleep(processes, tmp_path)
    assert dump(p.pid, tmp_path / "img").returncode == 0
    p.wait(timeout=10)
    core = tmp_path / "img" / f"core-{p.pid}.img"
    core.write_bytes(core.read_bytes()[:-10])
    res = restore(tmp_path / "img")
    assert_one_line_error(res)
    assert core.name in res.stderr and "offset" in res.stderr
    assert state(p.pid) is None


def test_sigkill_still_works_after_restore(tmp_path: Path, processes: Processes) -> None:
    p = spawn_sleep(processes, tmp_path)
    assert dump(p.pid, tmp_path / "img").returncode == 0
    p.wait(timeout=10)
    assert restore(tmp_path / "img").returncode == 0
    os.kill(p.pid, signal.SIGKILL)
    assert procs.wait_exit(p.pid, 10).status is not None


THREADS_AND_CHILD = r"""
import os, threading, time
for _ in range(3):
    threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()
if os.fork() == 0:
    time.sleep(1000)
time.sleep(1000)
"""


@pytest.mark.parametrize("fault", ["restore-after-memory", "restore-before-detach"])
def test_failed_restore_of_tree_with_threads_leaves_nothing(tmp_path: Path, processes: Processes,
                                                            fault: str) -> None:
    p = processes.spawn([sys.executable, "-c", THREADS_AND_CHILD], tmp_path)
    time.sleep(0.5)
    child = int(Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()[0])
    assert len(os.listdir(f"/proc/{p.pid}/task")) == 4
    assert dump(p.pid, tmp_path / "img").returncode == 0
    p.wait(timeout=10)
    procs.wait_exit(child, 10)
    assert_one_line_error(restore(tmp_path / "img", fault=fault))
    # the killed child puppet is re-parented to us (subreaper) and left for us to reap
    assert state(p.pid) is None and state(child) in (None, "Z"), "a puppet survived the failed restore"
    procs.wait_exit(child, 10)
    assert restore(tmp_path / "img").returncode == 0
    assert len(os.listdir(f"/proc/{p.pid}/task")) == 4 and state(child) == "S"
