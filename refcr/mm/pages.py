"""The pages of an image: raw page data in pages-N.img, described by a
pagemap (pagemap-PID.img for private memory, pagemap-shmem-ID.img for a
shared object).

Dump side: :class:`PagesWriter` appends page data (one write per batch of up
to READ_CHUNK bytes) and records runs, merging neighbours; runs an
incremental image leaves to its parent are recorded as ``in_parent``.
Restore side: :func:`read_page_batches` yields batches as views of a
read-only mapping of the pages file (no copy in refcr), then the pages that
live in the parent chain (mm/track.py).
"""
from __future__ import annotations

import mmap
import os
from bisect import bisect_right
from dataclasses import dataclass
from typing import Iterator

from refcr.errors import RestoreError
from refcr.images.imagedir import ImageDir
from refcr.mm.track import ProcessTrack, parent_pages
from refcr.pb import pagemap_pb2
from refcr.ptrace.syscalls import PAGE_SIZE

READ_CHUNK = 8 << 20        # bytes of pages copied per batch


MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)   # pages images are mapped to be read at once


@dataclass
class PagesWriter:
    """Appends page data to pages-N.img and records where it came from."""

    images: ImageDir
    pages_id: int

    def __post_init__(self) -> None:
        self.raw = self.images.open_raw("pages", id=self.pages_id, mode="wb")
        self.entries: list[pagemap_pb2.PagemapEntry] = []

    def add(self, vaddr: int, data: bytes | memoryview) -> None:
        self.raw.write(data)
        self._record(vaddr, len(data) // PAGE_SIZE)

    def add_runs(self, ranges: list[tuple[int, int]], data: memoryview) -> None:
        """The concatenated contents of (vaddr, length) ranges: one write."""
        self.raw.write(data)
        for vaddr, n in ranges:
            self._record(vaddr, n // PAGE_SIZE)

    def add_spliced(self, ranges: list[tuple[int, int]], fd: int, nbytes: int) -> None:
        """The contents of (vaddr, length) ranges, nbytes in all, waiting in
        the pipe fd (mm/taskio.py): spliced, not copied through refcr."""
        self.raw.splice_in(fd, nbytes)
        for vaddr, n in ranges:
            self._record(vaddr, n // PAGE_SIZE)

    def _record(self, vaddr: int, npages: int) -> None:
        last = self.entries[-1] if self.entries else None
        if last and not last.in_parent and last.vaddr + last.nr_pages * PAGE_SIZE == vaddr:
            last.nr_pages += npages
        else:
            self.entries.append(pagemap_pb2.PagemapEntry(vaddr=vaddr, nr_pages=npages))

    def add_parent(self, vaddr: int, npages: int) -> None:
        """Pages unchanged since the parent image (refcr/mm/track.py): no data here."""
        last = self.entries[-1] if self.entries else None
        if last and last.in_parent and last.vaddr + last.nr_pages * PAGE_SIZE == vaddr:
            last.nr_pages += npages
        else:
            self.entries.append(pagemap_pb2.PagemapEntry(vaddr=vaddr, nr_pages=npages, in_parent=True))

    def finish(self, type_name: str, id: int | str, track: ProcessTrack | None = None) -> None:
        self.raw.close()
        head = pagemap_pb2.PagemapHead(pages_id=self.pages_id)
        head.pages_in_parent = sum(e.nr_pages for e in self.entries if e.in_parent)
        head.pages_written = sum(e.nr_pages for e in self.entries) - head.pages_in_parent
        if track is not None:
            track.fill_head(head)
        self.images.write(type_name, self.entries, id=id, head=head)


def chunks(runs: list[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    """Group (addr, nr_pages) runs into byte ranges of at most READ_CHUNK each."""
    batch: list[tuple[int, int]] = []
    size = 0
    for addr, npages in runs:
        length = npages * PAGE_SIZE
        while length:
            take = min(length, READ_CHUNK - size)
            batch.append((addr, take))
            size += take
            addr += take
            length -= take
            if size == READ_CHUNK:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


def read_page_batches(images: ImageDir, type_name: str, id: int | str,
                      only: list[tuple[int, int]] | None = None
                      ) -> Iterator[tuple[list[tuple[int, int]], memoryview | bytes]]:
    """Yield (ranges, data) of a pagemap: (vaddr, length) ranges and their
    contents concatenated, at most READ_CHUNK bytes at a time.  The image's
    own pages are views of a read-only mapping of the pages file (no copy in
    refcr; a view is valid until the next item); pages that an incremental
    image refers to its parent chain follow.  only: sorted (start, end)
    ranges; batches with no page in them are skipped (not mapped or read),
    the others come whole (see clipped)."""
    head, entries = images.read_head(type_name, id=id)
    own = [(e.vaddr, e.nr_pages) for e in entries if not e.in_parent]
    in_parent = [(e.vaddr, e.nr_pages) for e in entries if e.in_parent]
    if only is not None:
        starts = [s for s, _ in only]
        in_parent = [(a, n // PAGE_SIZE) for v, k in in_parent for a, n in _inside(v, k * PAGE_SIZE, only, starts)]
    with images.open_raw("pages", id=head.pages_id) as raw:
        yield from _mapped_batches(raw.fileno(), f"pages-{head.pages_id}.img", own, only)
    if in_parent:       # an incremental image: the rest comes from the parent chain
        for vaddr, data in parent_pages(images, type_name, id, in_parent, chunk=READ_CHUNK):
            yield [(vaddr, len(data))], data


def clipped(batches: Iterator[tuple[list[tuple[int, int]], memoryview | bytes]],
            only: list[tuple[int, int]] | None) -> Iterator[tuple[list[tuple[int, int]], memoryview | bytes]]:
    """The parts of read_page_batches' (ranges, data) that lie inside the
    sorted, disjoint (start, end) ranges `only` (everything if None); each
    item's data is contiguous, a view of the batch's (valid as long as it)."""
    if only is None:
        yield from batches
        return
    starts = [s for s, _ in only]
    for ranges, data in batches:
        out: list[tuple[int, int]] = []
        first = size = pos = 0
        for addr, length in ranges:
            for a, n in _inside(addr, length, only, starts):
                off = pos + a - addr
                if out and first + size == off:
                    out.append((a, n))
                    size += n
                    continue
                if out:
                    yield out, data[first:first + size]
                out, first, size = [(a, n)], off, n
            pos += length
        if out:
            yield out, data[first:first + size]


def _inside(addr: int, length: int, only: list[tuple[int, int]], starts: list[int]) -> Iterator[tuple[int, int]]:
    end = addr + length
    i = max(bisect_right(starts, addr) - 1, 0)
    while i < len(only) and only[i][0] < end:
        s, e = max(only[i][0], addr), min(only[i][1], end)
        if s < e:
            yield s, e - s
        i += 1


def page_count(images: ImageDir, type_name: str, id: int | str) -> int:
    """How many pages a pagemap restores (its own and its parents')."""
    if not images.exists(type_name, id=id):
        return 0
    head, _ = images.read_head(type_name, id=id)
    return head.pages_written + head.pages_in_parent


def read_pages(images: ImageDir, type_name: str, id: int | str) -> Iterator[tuple[int, memoryview | bytes]]:
    """Yield (vaddr, data) runs of a pagemap, in at most READ_CHUNK pieces."""
    for ranges, data in read_page_batches(images, type_name, id):
        pos = 0
        for vaddr, n in ranges:
            yield vaddr, data[pos:pos + n]
            pos += n


def _touches(batch: list[tuple[int, int]], only: list[tuple[int, int]] | None) -> bool:
    if only is None:
        return True
    starts = [s for s, _ in only]
    return any(next(_inside(addr, n, only, starts), None) for addr, n in batch)


def check_size(fd: int, name: str, need: int) -> None:
    if os.fstat(fd).st_size < need:
        raise RestoreError(f"{name} is shorter than its pagemap says")


def _mapped_batches(fd: int, name: str, runs: list[tuple[int, int]],
                    only: list[tuple[int, int]] | None = None) -> Iterator[tuple[list[tuple[int, int]], memoryview]]:
    """Batches of (addr, nr_pages) runs whose data fill the file from offset 0,
    each a view of a read-only mapping of its part of the file (mapped one
    batch at a time: refcr's footprint stays one batch); with only, just
    the batches that touch it."""
    check_size(fd, name, sum(n for _, n in runs) * PAGE_SIZE)
    off = 0
    for batch in chunks(runs):
        size = sum(n for _, n in batch)
        if not _touches(batch, only):
            off += size
            continue
        try:
            area = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE | MAP_POPULATE, prot=mmap.PROT_READ,
                             offset=off)
        except OSError:     # a filesystem that cannot map files: read them
            yield from _read_batches(fd, name, runs, off, only)
            return
        try:
            with memoryview(area) as data:
                yield batch, data
        finally:
            try:
                area.close()
            except BufferError:     # a caller still holds a view: unmapped with it
                pass
        off += size


def _read_batches(fd: int, name: str, runs: list[tuple[int, int]], start: int = 0,
                  only: list[tuple[int, int]] | None = None) -> Iterator[tuple[list[tuple[int, int]], memoryview]]:
    """_mapped_batches with reads into one buffer, from file offset start on."""
    buf = memoryview(bytearray(min(READ_CHUNK, sum(n for _, n in runs) * PAGE_SIZE)))
    off = 0
    for batch in chunks(runs):
        size = sum(n for _, n in batch)
        if off >= start and _touches(batch, only):
            if os.preadv(fd, [buf[:size]], off) != size:
                raise RestoreError(f"{name}: short read at offset {off}")
            yield batch, buf[:size]
        off += size
