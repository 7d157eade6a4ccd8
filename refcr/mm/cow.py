"""Private anonymous pages shared copy-on-write between a process and its parent.

After fork() a parent and its child map the same frames in their private
anonymous areas until one of them writes a page.  Only fork can make such
sharing again, so the restore rebuilds it the way it came about (CRIU does
the same with its premapped, inherited private areas).

Dump: for each private anonymous area of a child that its parent has at the
same addresses, the pages whose frame (/proc/PID/pagemap, PFN bits 0-54,
which only root sees) is the parent's frame are recorded as (address,
nr_pages) runs (VmaEntry.cow).  Their contents are stored too: the record
only says what the child may inherit, and an image without it is restored as
before.

Restore (refcr/restore.py, while the tree is forked): before a process forks
its children, its areas that a child shares pages of are mapped and filled
("ready"); every child inherits them through fork, keeps those it has a twin
of (same addresses, protection, flags and accounting, with cow runs), writes
there only its pages outside the cow runs, drops (MADV_DONTNEED) those it did
not have, and unmaps every other inherited area.  The rest of each process's
memory is mapped and filled later, as before (memory.restore).

Costs: the dump reads both processes' pagemap entries of the pages of twin
areas that are mapped more than once (8 bytes a page); a fork copies the page
tables of the ready areas; the restore reads the pages images of a process
with ready areas in two passes (the batches of each only).
Deviations: an area a child split or changed after the fork (mprotect or
madvise of a part, mremap) comes back as private copies, as do swapped-out
pages (pagemap shows no frame for them); so do the copied pages of private
file mappings (a .data section written before the fork): their files can only
be opened once the tree's mount namespace is made, after the forks; without
CAP_SYS_ADMIN pagemap shows no frames and nothing is shared.
"""
from __future__ import annotations

import os
import struct
from bisect import bisect_right

from refcr.images.imagedir import ImageDir
from refcr.log import log
from refcr.pb import mm_pb2
from refcr.ptrace import native, proc
from refcr.ptrace.syscalls import PAGE_SIZE
from refcr.ptrace.tracee import Remote

PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PFN_MASK = (1 << 55) - 1
MADV_DONTNEED = 4
CHUNK = 1 << 16                     # pagemap entries read at a time
ANY = 1 << 64                       # above every address


# ---------------------------------------------------------------- dump ----

def _twins(vmas: list[mm_pb2.VmaEntry], parent_vmas: list[mm_pb2.VmaEntry]) -> list[mm_pb2.VmaEntry]:
    """The child's private anonymous areas its parent has at the same addresses."""
    theirs = {(v.start, v.end) for v in parent_vmas if v.kind == mm_pb2.VMA_ANON}
    return [v for v in vmas if v.kind == mm_pb2.VMA_ANON and (v.start, v.end) in theirs]


def shared_runs(pid: int, ppid: int, start: int, end: int) -> list[tuple[int, int]]:
    """(addr, nr_pages) runs of [start, end) where pid maps ppid's frame."""
    runs: list[tuple[int, int]] = []
    with open(proc.path(pid, "pagemap"), "rb", buffering=0) as mine, \
            open(proc.path(ppid, "pagemap"), "rb", buffering=0) as theirs:
        for base in range(start, end, CHUNK * PAGE_SIZE):
            count = (min(end, base + CHUNK * PAGE_SIZE) - base) // PAGE_SIZE
            off = base // PAGE_SIZE * 8
            a = struct.unpack(f"<{count}Q", os.pread(mine.fileno(), count * 8, off))
            b = struct.unpack(f"<{count}Q", os.pread(theirs.fileno(), count * 8, off))
            for i in range(count):
                x = a[i]
                if x != b[i] or not x & PM_PRESENT or x & PM_SWAP or not x & PFN_MASK:
                    continue
                addr = base + i * PAGE_SIZE
                if runs and runs[-1][0] + runs[-1][1] * PAGE_SIZE == addr:
                    runs[-1] = (runs[-1][0], runs[-1][1] + 1)
                else:
                    runs.append((addr, 1))
    return runs


def record(pid: int, ppid: int, vmas: list[mm_pb2.VmaEntry], parent_vmas: list[mm_pb2.VmaEntry]) -> int:
    """Fill VmaEntry.cow of pid's areas (ppid: its parent, frozen too); returns the page count."""
    total = 0
    for vma in _twins(vmas, parent_vmas):
        for start, count in native.scan_pagemap(pid, vma.start, vma.end, shared=True):  # the candidates
            for addr, n in shared_runs(pid, ppid, start, start + count * PAGE_SIZE):
                if vma.cow and vma.cow[-2] + vma.cow[-1] * PAGE_SIZE == addr:
                    vma.cow[-1] += n
                else:
                    vma.cow.extend((addr, n))
                total += n
    if total:
        log.info("process %d: %d pages shared copy-on-write with its parent %d", pid, total, ppid)
    return total


# ------------------------------------------------------------- restore ----

def runs_of(vma: mm_pb2.VmaEntry) -> list[tuple[int, int]]:
    """VmaEntry.cow as (start, end) byte ranges."""
    return [(a, a + n * PAGE_SIZE) for a, n in zip(vma.cow[::2], vma.cow[1::2], strict=True)]


def _same_area(vma: mm_pb2.VmaEntry, theirs: mm_pb2.VmaEntry) -> bool:
    return (theirs.kind == vma.kind == mm_pb2.VMA_ANON and theirs.end == vma.end
            and theirs.prot == vma.prot and theirs.flags == vma.flags and theirs.accounted == vma.accounted)


def kept(mm: mm_pb2.MmEntry, inherited: dict[int, mm_pb2.VmaEntry]) -> dict[int, mm_pb2.VmaEntry]:
    """The inherited areas (start -> the process's own entry) a process keeps."""
    return {v.start: v for v in mm.vmas
            if v.cow and v.start in inherited and _same_area(v, inherited[v.start])}


def wanted(mm: mm_pb2.MmEntry, children: list[mm_pb2.MmEntry]) -> dict[int, mm_pb2.VmaEntry]:
    """The process's areas that one of its children shares pages of."""
    mine = {v.start: v for v in mm.vmas if v.kind == mm_pb2.VMA_ANON}
    return {s: mine[s] for c in children for s in kept(c, mine)}


def drop_inherited(remote: Remote, inherited: dict[int, mm_pb2.VmaEntry], keep: dict[int, mm_pb2.VmaEntry]) -> None:
    """Unmap the areas inherited from the parent that this process does not keep."""
    calls = [("munmap", (v.start, v.end - v.start)) for s, v in inherited.items() if s not in keep]
    if calls:
        remote.check_batch(calls)


def to_write(ready: dict[int, mm_pb2.VmaEntry], keep: dict[int, mm_pb2.VmaEntry]) -> list[tuple[int, int]]:
    """Sorted ranges of the ready areas whose pages the process writes itself:
    all of a fresh area, a kept one but for its cow runs."""
    out: list[tuple[int, int]] = []
    for start in sorted(ready):
        vma = ready[start]
        cursor = vma.start
        for s, e in (runs_of(vma) if start in keep else []):
            if s > cursor:
                out.append((cursor, s))
            cursor = e
        if cursor < vma.end:
            out.append((cursor, vma.end))
    return out


def outside(areas: dict[int, mm_pb2.VmaEntry]) -> list[tuple[int, int]]:
    """Sorted ranges of the address space outside the given areas."""
    out, cursor = [], 0
    for start in sorted(areas):
        if start > cursor:
            out.append((cursor, start))
        cursor = areas[start].end
    out.append((cursor, ANY))
    return out


def zap_absent(remote: Remote, images: ImageDir, image_id: int, keep: dict[int, mm_pb2.VmaEntry]) -> None:
    """MADV_DONTNEED the pages of kept areas the process had none of (the
    parent's came along with the area)."""
    if not keep or not images.exists("pagemap", id=image_id):
        have = []
    else:
        _, entries = images.read_head("pagemap", id=image_id)
        have = sorted((e.vaddr, e.vaddr + e.nr_pages * PAGE_SIZE) for e in entries)
    starts = [s for s, _ in have]
    calls = []
    for vma in keep.values():
        cursor = vma.start
        i = max(bisect_right(starts, vma.start) - 1, 0)
        while i < len(have) and have[i][0] < vma.end:
            s, e = have[i]
            if e > cursor:
                if s > cursor:
                    calls.append(("madvise", (cursor, s - cursor, MADV_DONTNEED)))
                cursor = e
            i += 1
        if cursor < vma.end:
            calls.append(("madvise", (cursor, vma.end - cursor, MADV_DONTNEED)))
    if calls:
        remote.check_batch(calls)
