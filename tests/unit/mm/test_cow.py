"""Pages shared copy-on-write between a parent and its child (refcr/mm/cow.py):
what the dump finds in pagemap, why it reads shared pages through
/proc/PID/mem, and the range arithmetic of the restore side."""

from __future__ import annotations

import mmap
import os
import signal
from dataclasses import dataclass, field

import pytest

from refcr.mm import cow, memory
from refcr.mm import pages as page_io
from refcr.pb import mm_pb2, pagemap_pb2
from refcr.ptrace import native

PG = 4096
N = 16
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="pagemap shows frames to root only")


@pytest.fixture
def forked():
    """(area address, mmap, child pid): N pages filled, then a fork; the
    parent (this process) writes pages 0-3 after it."""
    area = mmap.mmap(-1, N * PG, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    area.madvise(mmap.MADV_NOHUGEPAGE)
    for i in range(N):
        area[i * PG:(i + 1) * PG] = bytes([i + 1]) * PG
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, b"x")
        signal.pause()
        os._exit(0)
    os.close(w)
    os.read(r, 1)
    os.close(r)
    for i in range(4):
        area[i * PG] = 0xAA
    addr = native_address(area)
    yield addr, area, pid
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    area.close()


def native_address(area: mmap.mmap) -> int:
    import ctypes
    return ctypes.addressof(ctypes.c_char.from_buffer(area))


@needs_root
def test_shared_runs_are_the_pages_nobody_wrote(forked):
    addr, _, child = forked
    assert cow.shared_runs(child, os.getpid(), addr, addr + N * PG) == [(addr + 4 * PG, N - 4)]


def test_scan_splits_shared_from_exclusive_pages(forked):
    addr, _, _ = forked
    me = os.getpid()
    assert native.scan_pagemap(me, addr, addr + N * PG, shared=True) == [(addr + 4 * PG, N - 4)]
    assert native.scan_pagemap(me, addr, addr + N * PG, shared=False) == [(addr, 4)]


@needs_root
def test_process_vm_readv_unshares_what_it_reads_and_mem_does_not(forked):
    """Why the dump reads shared pages through /proc/PID/mem."""
    addr, _, child = forked
    page = addr + 8 * PG
    fd = os.open(f"/proc/{child}/mem", os.O_RDONLY)
    try:
        assert os.pread(fd, PG, page) == bytes([9]) * PG
    finally:
        os.close(fd)
    assert (page, 1) in cow.shared_runs(child, os.getpid(), page, page + PG)
    assert native.vm_read(child, [(page, PG)]) == bytes([9]) * PG
    assert cow.shared_runs(child, os.getpid(), page, page + PG) == []


def test_runs_to_read_puts_shared_pages_on_the_mem_path(forked):
    addr, _, _ = forked
    vma = mm_pb2.VmaEntry(start=addr, end=addr + N * PG, prot=3, flags=mmap.MAP_PRIVATE, kind=mm_pb2.VMA_ANON)
    groups = memory._runs_to_read(os.getpid(), [vma], None, None)
    assert groups == [(True, [(addr, 4)]), (False, [(addr + 4 * PG, N - 4)])]


def test_split_shared():
    runs = [(0, 4), (8 * PG, 4)]
    shared = [(2 * PG, 8)]
    assert memory._split_shared(runs, shared) == [
        (False, 0, 2), (True, 2 * PG, 2), (True, 8 * PG, 2), (False, 10 * PG, 2)]
    assert memory._split_shared(runs, []) == [(False, 0, 4), (False, 8 * PG, 4)]


def _vma(start: int, end: int, cow_runs: tuple[int, ...] = (), **kw) -> mm_pb2.VmaEntry:
    kw.setdefault("prot", 3)
    return mm_pb2.VmaEntry(start=start * PG, end=end * PG, flags=mmap.MAP_PRIVATE, kind=mm_pb2.VMA_ANON,
                           cow=[x * PG if i % 2 == 0 else x for i, x in enumerate(cow_runs)], **kw)


def test_kept_needs_the_same_area_and_cow_runs():
    parent = {v.start: v for v in [_vma(0, 8), _vma(10, 20), _vma(30, 40)]}
    mm = mm_pb2.MmEntry(vmas=[_vma(0, 8, (1, 2)), _vma(10, 20), _vma(30, 40, (30, 1), prot=1)])
    assert list(cow.kept(mm, parent)) == [0]
    assert list(cow.wanted(mm_pb2.MmEntry(vmas=list(parent.values())), [mm])) == [0]


def test_to_write_and_outside():
    ready = {0: _vma(0, 8, (1, 2, 5, 1)), 10 * PG: _vma(10, 12)}
    assert cow.to_write(ready, {0: ready[0]}) == [(0, PG), (3 * PG, 5 * PG), (6 * PG, 8 * PG), (10 * PG, 12 * PG)]
    assert cow.outside(ready) == [(8 * PG, 10 * PG), (12 * PG, cow.ANY)]


def test_clipped_keeps_data_with_its_pages():
    data = b"".join(bytes([i]) * PG for i in range(6))
    ranges = [(0, 2 * PG), (4 * PG, 4 * PG)]
    got = [(r, bytes(d)) for r, d in page_io.clipped(iter([(ranges, memoryview(data))]), [(PG, 5 * PG)])]
    assert got == [([(PG, PG), (4 * PG, PG)], data[PG:3 * PG])]       # contiguous data: one item
    got = [(r, bytes(d)) for r, d in page_io.clipped(iter([(ranges, memoryview(data))]),
                                                     [(0, PG), (5 * PG, 6 * PG)])]
    assert got == [([(0, PG)], data[:PG]), ([(5 * PG, PG)], data[3 * PG:4 * PG])]
    assert list(page_io.clipped(iter([(ranges, data)]), None)) == [(ranges, data)]


@dataclass
class FakeRemote:
    calls: list = field(default_factory=list)

    def check_batch(self, calls):
        self.calls.extend(calls)
        return [0] * len(calls)


@dataclass
class FakeImages:
    entries: list

    def exists(self, *_, **__):
        return True

    def read_head(self, *_, **__):
        return None, self.entries


def test_zap_absent_drops_the_pages_the_child_did_not_have():
    images = FakeImages([pagemap_pb2.PagemapEntry(vaddr=2 * PG, nr_pages=2),
                         pagemap_pb2.PagemapEntry(vaddr=6 * PG, nr_pages=1, in_parent=True)])
    remote = FakeRemote()
    cow.zap_absent(remote, images, 1, {0: _vma(0, 8, (2, 1))})
    assert remote.calls == [("madvise", (0, 2 * PG, 4)), ("madvise", (4 * PG, 2 * PG, 4)),
                            ("madvise", (7 * PG, PG, 4))]
