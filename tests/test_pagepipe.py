"""Pages by pipe (refcr/mm/pagepipe.py): a process with enough memory of its
own has its pages vmsplice()d into pipes in the task and spliced into the
pages file.  What the image holds is what the memory holds, page for page;
the pipes are gone from the task afterwards; a task that cannot have them
(no fd left) is dumped the old way, with the same result."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import Processes

from refcr.images.imagedir import ImageDir
from refcr.mm import pagepipe
from refcr.mm import pages as page_io

PG = 4096
SIZE = 3 * pagepipe.MIN_BYTES + 5 * PG      # crosses READ_CHUNK batches, ends mid-pipe

TARGET = r"""
import ctypes, os, resource, sys
size, no_fds = int(sys.argv[1]), sys.argv[2] == "no-fds"
buf = bytearray(size)
for off in range(0, size, 4096):            # every page its own contents
    buf[off:off + 16] = off.to_bytes(8, "little") * 2
    buf[off + 2000] = (off // 4096) & 0xff
addr = ctypes.addressof((ctypes.c_char * size).from_buffer(buf))
held = []
if no_fds:                                  # every fd below the soft limit in use
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    try:
        while True:
            held.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
print(addr, flush=True)
sys.stdin.read()
"""


def _start(processes: Processes, tmp_path: Path, mode: str) -> tuple[int, int]:
    p = subprocess.Popen([sys.executable, "-c", TARGET, str(SIZE), mode], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, start_new_session=True, cwd=tmp_path)
    processes.pids.add(p.pid)
    assert p.stdout is not None
    return p.pid, int(p.stdout.readline())


def _fds(pid: int) -> dict[str, str]:
    return {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


def _dump(pid: int, images: Path) -> str:
    res = subprocess.run([sys.executable, "-m", "refcr", "dump", "-t", str(pid), "-D", str(images), "-o", "log",
                          "-v4", "-R"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert res.returncode == 0, res.stderr
    return (images / "log").read_text()


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


def test_split_fills_pipes_in_order() -> None:
    one = pagepipe.PIPE_BYTES
    batch = [(0x10000, 3 * PG), (0x100000, one), (0x900000, one // 2)]
    assert pagepipe._split(batch, 8) == [
        [(0x10000, 3 * PG), (0x100000, one - 3 * PG)],
        [(0x100000 + one - 3 * PG, 3 * PG), (0x900000, one // 2)],
    ]
    assert len(pagepipe._split([(0, pagepipe.PIPES * one)], pagepipe.PIPES)) == pagepipe.PIPES


def test_cut_after_what_the_kernel_took() -> None:
    rs = [(0x1000, 2 * PG), (0x8000, 3 * PG)]
    assert pagepipe._cut(rs, 0) == ([], rs)
    assert pagepipe._cut(rs, 2 * PG) == ([(0x1000, 2 * PG)], [(0x8000, 3 * PG)])
    assert pagepipe._cut(rs, 3 * PG) == ([(0x1000, 2 * PG), (0x8000, PG)], [(0x9000, 2 * PG)])
    assert pagepipe._cut(rs, 5 * PG) == (rs, [])
