"""Page copies by the task (refcr/mm/taskio.py): a process with enough memory
of its own has its pages vmsplice()d into pipes in the task and spliced into
the pages file; at restore the puppet preadv()s them from the pages file.
What the image holds is what the memory holds, page for page, after the
dump and after the restore; neither the pipes nor the pages file's fd stay
in the task; a task that cannot have them (no fd left) is dumped the old
way, with the same result."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import Processes, assert_one_line_error

from refcr.images.imagedir import ImageDir
from refcr.mm import cow, taskio
from refcr.mm import pages as page_io
from zdtm.harness import procs

PG = 4096
SIZE = 3 * taskio.MIN_BYTES + 5 * PG      # crosses READ_CHUNK batches, ends mid-pipe

TARGET = r"""
import ctypes, os, resource, signal, sys
size, mode = int(sys.argv[1]), sys.argv[2]
buf = bytearray(size)
for off in range(0, size, 4096):            # every page its own contents
    buf[off:off + 16] = off.to_bytes(8, "little") * 2
    buf[off + 2000] = (off // 4096) & 0xff
addr = ctypes.addressof((ctypes.c_char * size).from_buffer(buf))
held = []
if mode == "no-fds":                        # every fd below the soft limit in use
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    try:
        while True:
            held.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
if mode == "forked" and os.fork() == 0:     # the child shares every page of buf
    signal.pause()
print(addr, flush=True)
signal.pause()
"""


def _start(processes: Processes, tmp_path: Path, mode: str) -> tuple[int, int]:
    p = subprocess.Popen([sys.executable, "-c", TARGET, str(SIZE), mode], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, start_new_session=True, cwd=tmp_path)
    processes.pids.add(p.pid)
    assert p.stdout is not None
    return p.pid, int(p.stdout.readline())


def _fds(pid: int) -> dict[str, str]:
    return {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


def _run(images: Path, *args: str, fault: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REFCR_FAULT", "REFCR_KILL_AT")}
    if fault:
        env["REFCR_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "refcr", *args, "-D", str(images), "-o", "log", "-v4"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, env=env)


def _refcr(images: Path, *args: str) -> str:
    """The log of a successful refcr command."""
    res = _run(images, *args)
    assert res.returncode == 0, res.stderr
    return (images / "log").read_text()


def _dump(pid: int, images: Path) -> str:
    return _refcr(images, "dump", "-t", str(pid), "-R")


def _image_matches_memory(pid: int, images: Path, addr: int) -> None:
    """Every page of the buffer is in the image, as the memory has it."""
    seen = 0
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for vaddr, data in page_io.read_pages(ImageDir(str(images)), "pagemap", pid):
            lo, hi = max(vaddr, addr), min(vaddr + len(data), addr + SIZE)
            if lo >= hi:
                continue
            assert bytes(data[lo - vaddr:hi - vaddr]) == os.pread(fd, hi - lo, lo), f"pages at {lo:#x} differ"
            seen += hi - lo
    finally:
        os.close(fd)
    assert seen >= SIZE - 2 * PG        # all but the buffer's partial first and last pages


@pytest.mark.parametrize("mode", ["pipes", "no-fds"])
def test_pages_in_the_image_are_the_memory(tmp_path: Path, processes: Processes, mode: str) -> None:
    pid, addr = _start(processes, tmp_path, mode)
    fds, maps = _fds(pid), Path(f"/proc/{pid}/maps").read_text()
    log = _dump(pid, tmp_path / "img")
    assert ("vmsplice=" in log) == (mode == "pipes"), log[-3000:]
    if mode == "no-fds":
        assert "pipe2 failed" in log
    assert _fds(pid) == fds, "the page pipes were left in the task"
    assert Path(f"/proc/{pid}/maps").read_text() == maps
    _image_matches_memory(pid, tmp_path / "img", addr)


def test_a_dump_failing_mid_pages_leaves_no_pipe(tmp_path: Path, processes: Processes) -> None:
    pid, addr = _start(processes, tmp_path, "pipes")
    fds, maps = _fds(pid), Path(f"/proc/{pid}/maps").read_text()
    res = _run(tmp_path / "img", "dump", "-t", str(pid), fault="dump-mid-pages")
    assert_one_line_error(res)
    assert "dump-mid-pages" in res.stderr
    assert _fds(pid) == fds, "the page pipes were left in the task"
    assert Path(f"/proc/{pid}/maps").read_text() == maps
    assert procs.read_stat(pid).state in "SR", "the task was not resumed"


@pytest.mark.parametrize("mode", ["pipes", "no-fds"])
def test_restored_memory_is_the_image(tmp_path: Path, processes: Processes, mode: str) -> None:
    pid, addr = _start(processes, tmp_path, mode)
    fds = _fds(pid)
    _refcr(tmp_path / "img", "dump", "-t", str(pid))
    log = _refcr(tmp_path / "img", "restore", "-d")
    processes.pids.add(pid)
    assert "preadv=" in log, log[-3000:]
    assert _fds(pid).keys() == fds.keys(), "the pages file's fd was left in the task"
    _image_matches_memory(pid, tmp_path / "img", addr)


def test_pages_shared_with_a_child_stay_shared(tmp_path: Path, processes: Processes) -> None:
    """vmsplice does not pin: the pages the child shares go by pipe and stay shared."""
    pid, addr = _start(processes, tmp_path, "forked")
    child = int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])
    start, end = (addr + PG - 1) // PG * PG, (addr + SIZE) // PG * PG
    assert cow.shared_runs(child, pid, start, end) == [(start, (end - start) // PG)]
    log = _dump(pid, tmp_path / "img")
    assert "vmsplice=" in log
    assert cow.shared_runs(child, pid, start, end) == [(start, (end - start) // PG)], "the dump unshared pages"
    _image_matches_memory(pid, tmp_path / "img", addr)


def test_reads_cut_into_calls_and_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(taskio, "PREADV_IOVS", 2)
    monkeypatch.setattr(taskio, "PREADV_BYTES", 4 * PG)
    reads = taskio._reads([(0x1000, PG), (0x8000, 5 * PG), (0x20000, PG), (0x30000, PG)])
    assert [(r.offset, r.ranges) for r in reads] == [
        (0, [(0x1000, PG), (0x8000, 3 * PG)]),          # PREADV_BYTES
        (4 * PG, [(0xB000, 2 * PG), (0x20000, PG)]),    # PREADV_IOVS
        (7 * PG, [(0x30000, PG)]),
    ]
    assert [len(b) for b in taskio._read_batches(reads, 4)] == [2, 1]


def test_split_fills_pipes_in_order() -> None:
    one = taskio.PIPE_BYTES
    batch = [(0x10000, 3 * PG), (0x100000, one), (0x900000, one // 2)]
    assert taskio._split(batch, 8) == [
        [(0x10000, 3 * PG), (0x100000, one - 3 * PG)],
        [(0x100000 + one - 3 * PG, 3 * PG), (0x900000, one // 2)],
    ]
    assert len(taskio._split([(0, taskio.PIPES * one)], taskio.PIPES)) == taskio.PIPES


def test_cut_after_what_the_kernel_took() -> None:
    rs = [(0x1000, 2 * PG), (0x8000, 3 * PG)]
    assert taskio._cut(rs, 0) == ([], rs)
    assert taskio._cut(rs, 2 * PG) == ([(0x1000, 2 * PG)], [(0x8000, 3 * PG)])
    assert taskio._cut(rs, 3 * PG) == ([(0x1000, 2 * PG), (0x8000, PG)], [(0x9000, 2 * PG)])
    assert taskio._cut(rs, 5 * PG) == (rs, [])
