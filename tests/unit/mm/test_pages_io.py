"""The page I/O path of refcr/mm/pages.py and mm/memory.py: pages read from a live process in
batches across areas (unreadable ones through /proc/PID/mem), written with
their pagemap, and read back in batches from a mapping of the pages file
(or with reads where a file cannot be mapped)."""

from __future__ import annotations

import mmap
import os
import subprocess
import sys

import pytest

from refcr.errors import RestoreError
from refcr.images.imagedir import ImageDir
from refcr.mm import memory
from refcr.mm import pages as page_io
from refcr.pb import mm_pb2

PG = 4096

CHILD = r"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
base = libc.mmap(None, 16 * 4096, 3, 0x22, -1, 0)          # RW, MAP_PRIVATE|MAP_ANONYMOUS
for i in range(16):
    if i % 5 != 4:                                          # pages 4, 9, 14 never touched
        ctypes.memset(base + i * 4096, 65 + i, 4096)
libc.mprotect(ctypes.c_void_p(base + 8 * 4096), 4 * 4096, 0)   # pages 8-11: PROT_NONE
print(base, flush=True)
sys.stdin.read()
"""


def _pages(seeds: dict[int, int]) -> dict[int, bytes]:
    return {vaddr: bytes([seed]) * PG for vaddr, seed in seeds.items()}


def _write_image(d: ImageDir, pages: dict[int, bytes], pid: int = 7) -> None:
    out = page_io.PagesWriter(d, 1)
    for vaddr in sorted(pages):
        out.add_runs([(vaddr, PG)], memoryview(pages[vaddr]))
    out.finish("pagemap", pid)


def _read_back(d: ImageDir, pid: int = 7) -> dict[int, bytes]:
    got = {}
    for ranges, data in page_io.read_page_batches(d, "pagemap", pid):
        assert len(data) == sum(n for _, n in ranges) <= page_io.READ_CHUNK
        pos = 0
        for vaddr, n in ranges:
            for off in range(0, n, PG):
                got[vaddr + off] = bytes(data[pos + off:pos + off + PG])
            pos += n
    return got


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(page_io, "READ_CHUNK", 3 * PG)      # batches split runs and span them


def test_batches_round_trip(tmp_path, small_chunks):
    pages = _pages({0x10000 + i * PG: i + 1 for i in range(7)} | {0x40000: 50, 0x42000: 51})
    d = ImageDir(str(tmp_path), "w")
    _write_image(d, pages)
    assert _read_back(ImageDir(str(tmp_path))) == pages
    assert dict(page_io.read_pages(ImageDir(str(tmp_path)), "pagemap", 7)).keys() <= pages.keys()


def test_read_when_the_file_cannot_be_mapped(tmp_path, small_chunks, monkeypatch):
    pages = _pages({0x10000 + i * PG: i + 1 for i in range(5)} | {0x80000: 9})
    _write_image(ImageDir(str(tmp_path), "w"), pages)
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError(19, "No such device")

    monkeypatch.setattr(mmap, "mmap", refuse)
    assert _read_back(ImageDir(str(tmp_path))) == pages
    assert calls


def test_short_pages_file_is_an_error(tmp_path):
    pages = _pages({0x10000: 1, 0x11000: 2})
    _write_image(ImageDir(str(tmp_path), "w"), pages)
    os.truncate(tmp_path / "pages-1.img", PG)
    with pytest.raises(RestoreError, match="pages-1.img is shorter"):
        _read_back(ImageDir(str(tmp_path)))


def test_dump_private_pages_of_a_live_process(tmp_path, small_chunks):
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        base = int(child.stdout.readline())
        vmas = [mm_pb2.VmaEntry(start=base, end=base + 8 * PG, prot=3, kind=mm_pb2.VMA_ANON),
                mm_pb2.VmaEntry(start=base + 8 * PG, end=base + 12 * PG, prot=0, kind=mm_pb2.VMA_ANON),
                mm_pb2.VmaEntry(start=base + 12 * PG, end=base + 16 * PG, prot=3, kind=mm_pb2.VMA_ANON)]
        d = ImageDir(str(tmp_path), "w")
        out = page_io.PagesWriter(d, 1)
        count = memory.dump_private_pages(child.pid, vmas, out)
        out.finish("pagemap", 7)
    finally:
        child.kill()
        child.wait()
    want = {base + i * PG: bytes([65 + i]) * PG for i in range(16) if i % 5 != 4}
    assert count == len(want)
    assert _read_back(ImageDir(str(tmp_path))) == want


def test_only_some_ranges_are_read(tmp_path, small_chunks, monkeypatch):
    """read_page_batches(only=...) + clipped (mm/cow.py's split of a restore):
    batches with no page in the ranges are not mapped, the rest is cut."""
    pages = _pages({0x10000 + i * PG: i + 1 for i in range(9)})
    d = ImageDir(str(tmp_path), "w")
    _write_image(d, pages)
    mapped = []
    real_mmap = mmap.mmap
    monkeypatch.setattr(page_io.mmap, "mmap", lambda *a, **kw: mapped.append(kw.get("offset")) or real_mmap(*a, **kw))
    only = [(0x10000 + PG, 0x10000 + 2 * PG)]
    got = [(r, bytes(data)) for r, data in
           page_io.clipped(page_io.read_page_batches(ImageDir(str(tmp_path)), "pagemap", 7, only), only)]
    assert got == [([(0x10000 + PG, PG)], pages[0x10000 + PG])]
    assert mapped == [0]                # the first of three batches only
