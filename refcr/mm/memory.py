"""The address space: areas (VMAs), their pages, and the mm_struct fields.

Dump: every area from /proc/PID/smaps; page contents only where the kernel
says a page is present or swapped (/proc/PID/pagemap) and, in private file
mappings, only pages that were copied on write.  MAP_SHARED anonymous memory
is a shmem object: its contents are read once through /proc/PID/map_files.

A mapping of a deleted file is mapped again from its ghost (fs/regfile.py,
VmaEntry.file_id), the inode the file's fds get as well.  A memfd is one
object for its fds and its areas (mm/memfd.py, VmaEntry.shmid): mapped
shared like shared anonymous memory, or privately like a private file
mapping, its copied-on-write pages on top of the object's.

Restore (inside a puppet): unmap everything the puppet had, move the kernel's
vdso/vvar areas to their old addresses (or unmap them if the process had),
map every area at its address, write the pages, put the protections back,
and set the mm fields with PR_SET_MM_MAP.

An aio ring ("/[aio] (deleted)", VMA_AIO_RING) is an area in the dump's
list but not mapped here: its context (MmEntry.aios) is made again by
io_setup and moved to its address once the other areas are in place
(mm/aio.py).

Per-area VM flags: madvise advice from the smaps VmFlags (sr rr dc wf hg nh
mg dd) is applied again after the pages; guard regions (MADV_GUARD_INSTALL,
VmFlags gu) are found in pagemap (PM_GUARD_REGION, which also says "swapped":
their pages are never read, reading one faults) and installed again; then
mlock2 (lo, lf: MLOCK_ONFAULT), last because the kernel refuses guards in a
locked area.  mlockall(MCL_FUTURE) lives in mm->def_flags, which no file
shows: the dump's own scratch area, mapped just before, carries it in its
VmFlags, and mlockall() is called again once every area is in place.
Pages that are mapped elsewhere too (pagemap: not PM_MMAP_EXCLUSIVE) are read
through /proc/PID/mem, the others with process_vm_readv: that pins what it
reads, and the kernel unshares a copy-on-write page it pins, so a parent and
its children would no longer share their frames (after --leave-running, nor
at restore: mm/cow.py).
A process with taskio.MIN_BYTES or more of readable private pages has those
spliced through pipes instead (mm/taskio.py: one copy, not two); at restore
such an image is read by the puppet itself (preadv of the pages file).
Deviation: a page that process_vm_readv cannot read (EFAULT) is read through
/proc/PID/mem; one that still cannot be read makes the dump fail naming it.
"""
from __future__ import annotations

import ctypes
import errno
import mmap
import os
import stat as stat_mod
import struct
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs import namei, regfile
from refcr.fs.fd import DumpFiles
from refcr.fs.namei import Root
from refcr.images.imagedir import ImageDir
from refcr.ipc import sysv
from refcr.log import log, progress
from refcr.mm import aio, cow, memfd, pages, taskio
from refcr.mm.track import ProcessTrack
from refcr.pb import mm_pb2
from refcr.plugins import host
from refcr.ptrace import native, proc
from refcr.ptrace.syscalls import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_GROWSDOWN,
    MAP_NORESERVE,
    MAP_PRIVATE,
    MAP_SHARED,
    MLOCK_ONFAULT,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE_SIZE,
    PR_SET_MM,
    PR_SET_MM_MAP,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
)
from refcr.ptrace.tracee import BATCH_MAX, Remote, RemoteError

if TYPE_CHECKING:
    from refcr.ptrace.guardian import Guardian

SPECIAL_KINDS = {
    "[vdso]": mm_pb2.VMA_VDSO,
    "[vvar]": mm_pb2.VMA_VVAR,
    "[vvar_vclock]": mm_pb2.VMA_VVAR_VCLOCK,
}
SKIPPED = {"[vsyscall]"}   # the same fixed page in every process; cannot be unmapped
DELETED = " (deleted)"
SHMEM_NAME = "/dev/zero (deleted)"

# mmap flags of an area that the restore passes on as dumped
MAP_FLAGS_KEPT = MAP_SHARED | MAP_PRIVATE | MAP_GROWSDOWN | MAP_NORESERVE

# smaps VmFlags mnemonic -> madvise() advice that recreates it (sr SEQUENTIAL, rr RANDOM,
# dc DONTFORK, wf WIPEONFORK, hg HUGEPAGE, nh NOHUGEPAGE, mg MERGEABLE, dd DONTDUMP)
MADVISE_BY_VMFLAG = {"sr": 2, "rr": 1, "dc": 10, "wf": 18, "hg": 14, "nh": 15, "mg": 12, "dd": 16}
MADV_GUARD_INSTALL = 102
PM_GUARD_REGION = 1 << 58           # pagemap: a guard marker (reads of it fault)
MCL_FUTURE, MCL_ONFAULT = 2, 4


# ---------------------------------------------------------------- dump ----

def _prot(perms: str) -> int:
    return ((PROT_READ if perms[0] == "r" else 0) | (PROT_WRITE if perms[1] == "w" else 0)
            | (PROT_EXEC if perms[2] == "x" else 0))


def _socket_ring(pid: int, m: proc.Mapping) -> str:
    """What a mapped socket is, by its protocol's name (the sockfs xattr
    system.sockprotoname, read through /proc/PID/map_files)."""
    try:
        name = os.getxattr(f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}", "system.sockprotoname")
    except OSError:
        return "a socket's mapped buffer"
    proto = name.split(b"\0", 1)[0].decode(errors="replace")
    if proto == "PACKET":
        return "a packet socket's PACKET_RX_RING/PACKET_TX_RING (mapped ring)"
    return f"a mapped buffer of a {proto} socket"


def _vma_kind(pid: int, m: proc.Mapping) -> int:
    if m.name in SPECIAL_KINDS:
        return SPECIAL_KINDS[m.name]
    if sysv.sysvshm_id(m) is not None:      # before the inode test: shmid 0 is a valid id
        return mm_pb2.VMA_SYSVSHM
    if m.inode == 0:
        if m.shared:
            raise UnsupportedObject(f"shared anonymous area {m.start:x}-{m.end:x} without a shmem inode")
        return mm_pb2.VMA_ANON
    if m.name == aio.AIO_RING and m.shared:
        return mm_pb2.VMA_AIO_RING      # its context: MmEntry.aios (mm/aio.py)
    if m.name.endswith(DELETED):
        if m.shared and (m.name == SHMEM_NAME or memfd.is_memfd(m.name)):
            return mm_pb2.VMA_SHMEM      # a memfd too: one object, found by its inode
        if m.name == SHMEM_NAME:        # MAP_PRIVATE of a shared anonymous object (through map_files)
            raise UnsupportedObject(f"process {pid}: private mapping of {m.name!r} at {m.start:x}")
        # else a deleted file (mapped from its ghost, vma.file_id) or a memfd (its object, vma.shmid)
    if m.name.startswith("socket:["):
        raise UnsupportedObject(f"process {pid}: mapping of {m.name!r} at {m.start:x}: "
                                f"{_socket_ring(pid, m)} is not restored")
    if not m.name.startswith("/"):
        raise UnsupportedObject(f"process {pid}: mapping of {m.name!r} at {m.start:x} is not supported")
    return mm_pb2.VMA_FILE_SHARED if m.shared else mm_pb2.VMA_FILE_PRIVATE


def _map_file_mode(pid: int, m: proc.Mapping) -> int:
    """O_RDWR if the mapped file was opened for writing (map_files link mode)."""
    st = os.lstat(proc.path(pid, "map_files", f"{m.start:x}-{m.end:x}"))
    return os.O_RDWR if st.st_mode & stat_mod.S_IWUSR else os.O_RDONLY


def vma_entry(pid: int, m: proc.Mapping, files: DumpFiles | None = None) -> mm_pb2.VmaEntry:
    """One area; files: the dump's file context, where a mapped deleted file
    gets its ghost (without it, a pre-dump: only the kind of area matters)."""
    kind = _vma_kind(pid, m)
    vma = mm_pb2.VmaEntry(start=m.start, end=m.end, pgoff=m.offset, prot=_prot(m.perms),
                          flags=MAP_SHARED if m.shared else MAP_PRIVATE, kind=kind, name=m.name)
    if "gd" in m.vmflags:
        vma.flags |= MAP_GROWSDOWN
    if "nr" in m.vmflags:
        vma.flags |= MAP_NORESERVE
    vma.accounted = "ac" in m.vmflags
    vma.madvise.extend(adv for flag, adv in MADVISE_BY_VMFLAG.items() if flag in m.vmflags)
    vma.lock = _lock_state(m.vmflags)
    if "gu" in m.vmflags:           # the area has (had) guard regions: find them
        for addr, n in guard_runs(pid, m.start, m.end):
            vma.guards.extend((addr, n))
    if kind in (mm_pb2.VMA_FILE_PRIVATE, mm_pb2.VMA_FILE_SHARED):
        vma.path = m.name
        vma.fmode = _map_file_mode(pid, m)
        if m.name.endswith(DELETED):
            vma.path = m.name[:-len(DELETED)]
            if memfd.is_memfd(m.name):  # MAP_PRIVATE of a memfd: its object, as VMA_SHMEM has it
                vma.shmid = m.inode
                return vma
            if files is not None:
                vma.file_id = regfile.dump_mapped(pid, f"{m.start:x}-{m.end:x}", vma.fmode, files)
            return vma
        _device_vma(pid, m, vma)
    elif kind in (mm_pb2.VMA_SHMEM, mm_pb2.VMA_SYSVSHM):
        vma.shmid = m.inode
        vma.name = "" if m.name == SHMEM_NAME else m.name
    return vma


def _lock_state(vmflags: set[str]) -> int:
    if "lo" not in vmflags:
        return mm_pb2.VMA_UNLOCKED
    return mm_pb2.VMA_LOCKED_ONFAULT if "lf" in vmflags else mm_pb2.VMA_LOCKED


def guard_runs(pid: int, start: int, end: int) -> list[tuple[int, int]]:
    """(addr, nr_pages) runs of MADV_GUARD_INSTALL markers in [start, end)."""
    runs: list[tuple[int, int]] = []
    with open(proc.path(pid, "pagemap"), "rb", buffering=0) as f:
        for base in range(start, end, pages.READ_CHUNK):
            count = (min(end, base + pages.READ_CHUNK) - base) // PAGE_SIZE
            raw = os.pread(f.fileno(), count * 8, base // PAGE_SIZE * 8)
            for i, (entry,) in enumerate(struct.iter_unpack("<Q", raw)):
                if not entry & PM_GUARD_REGION:
                    continue
                addr = base + i * PAGE_SIZE
                if runs and runs[-1][0] + runs[-1][1] * PAGE_SIZE == addr:
                    runs[-1] = (runs[-1][0], runs[-1][1] + 1)
                else:
                    runs.append((addr, 1))
    return runs


def future_lock(pid: int, scratch: int) -> int:
    """mlockall(MCL_FUTURE[|MCL_ONFAULT]) shows only in the areas mapped after
    it: the dump's own scratch area, just mapped, tells (VmFlags lo / lf)."""
    flags = proc.area_vmflags(pid, scratch)
    state = _lock_state(flags) if flags is not None else mm_pb2.VMA_UNLOCKED
    if state == mm_pb2.VMA_UNLOCKED:
        return 0
    return MCL_FUTURE | (MCL_ONFAULT if state == mm_pb2.VMA_LOCKED_ONFAULT else 0)


DEVZERO = os.makedev(1, 5)          # private /dev/zero maps: plain anonymous memory to refcr


def _device_vma(pid: int, m: proc.Mapping, vma: mm_pb2.VmaEntry) -> None:
    """A mapping of a character or block device (other than /dev/zero) is a
    plugin's business, as in CRIU: HANDLE_DEVICE_VMA(fd, st) through the chain;
    the plugin that takes it is recorded (vma.plugin), and if none does the dump
    fails naming the mapping."""
    link = proc.path(pid, "map_files", f"{m.start:x}-{m.end:x}")
    try:
        st = os.stat(link)
    except OSError:
        return
    if not (stat_mod.S_ISCHR(st.st_mode) or stat_mod.S_ISBLK(st.st_mode)) or st.st_rdev == DEVZERO:
        return
    what = (f"process {pid}: mapping {m.start:x}-{m.end:x} of device {m.name} "
            f"({os.major(st.st_rdev)}:{os.minor(st.st_rdev)})")
    try:        # opened as CRIU does, for the plugin's ioctls; a device that refuses: a path fd
        fd = os.open(link, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        fd = os.open(link, os.O_PATH | os.O_CLOEXEC)
    try:
        name = host.handle_device_vma(fd, what)
    finally:
        os.close(fd)
    if name is None:
        loaded = host.names()
        why = f"no plugin took it ({', '.join(loaded)} declined)" if loaded else "no plugin is loaded"
        raise UnsupportedObject(f"{what}: refcr cannot dump device memory, and {why}")
    log.info("%s: taken by plugin %s", what, name)
    vma.plugin = name


def dump_private_pages(pid: int, vmas: list[mm_pb2.VmaEntry], out: pages.PagesWriter,
                       track: ProcessTrack | None = None, remote: Remote | None = None,
                       guard: "Guardian | None" = None) -> int:
    """Copy present/swapped pages of private areas; returns the page count.
    With track (incremental dump), pages unchanged since the parent image
    are recorded as in the parent instead.  With remote, a process with
    enough readable pages has them spliced through pipes (mm/taskio.py)."""
    total = 0
    pieces = _pieces(pid, vmas, out, track)
    area = mmap.mmap(-1, pages.READ_CHUNK, flags=mmap.MAP_PRIVATE)    # one buffer for every batch,
    buf = memoryview(area)                                       # its pages allocated as used
    mem_fd = os.open(proc.path(pid, "mem"), os.O_RDONLY | os.O_CLOEXEC)
    pipes = None
    try:
        if remote is not None and track is None \
                and taskio.worth_it(sum(n for readable, _, _, n in pieces if readable)):
            pipes = taskio.open_pipes(pid, remote, guard)

        def read_and_write(ranges: list[tuple[int, int]]) -> None:      # by mem: the pages may be shared
            out.add_runs(ranges, buf[:_read_batch(pid, mem_fd, False, ranges, buf)])

        for readable, runs in _grouped(pieces, pipes is not None):
            for batch in pages.chunks(runs):
                if pipes is not None and readable:
                    size = pipes.copy(batch, out, read_and_write)
                else:
                    size = _read_batch(pid, mem_fd, readable, batch, buf)
                    if track is None:
                        out.add_runs(batch, buf[:size])
                    else:
                        pos = 0
                        for addr, n in batch:
                            track.store(out, addr, buf[pos:pos + n])
                            pos += n
                total += size // PAGE_SIZE
                progress.pages(size // PAGE_SIZE)
    finally:
        os.close(mem_fd)
        if pipes is not None:
            pipes.close(failing=sys.exc_info()[1] is not None)
        try:
            buf.release()
            area.close()
        except BufferError:     # a view still held (by a traceback): unmapped with it
            pass
    return total


def _runs_to_read(pid: int, vmas: list[mm_pb2.VmaEntry], out: pages.PagesWriter,
                  track: ProcessTrack | None) -> list[tuple[bool, list[tuple[int, int]]]]:
    """The (addr, nr_pages) runs to copy, as (by process_vm_readv, runs) for
    each stretch of areas read the same way: batches then span many small areas."""
    return _grouped(_pieces(pid, vmas, out, track), pipes=False)


Piece = tuple[bool, bool, int, int]     # readable, mapped elsewhere too, addr, nr_pages


def _pieces(pid: int, vmas: list[mm_pb2.VmaEntry], out: pages.PagesWriter,
            track: ProcessTrack | None) -> list[Piece]:
    """Every run of pages to copy, in address order."""
    pieces: list[Piece] = []
    for vma in vmas:
        if vma.kind not in (mm_pb2.VMA_ANON, mm_pb2.VMA_FILE_PRIVATE):
            continue
        anon_only = vma.kind == mm_pb2.VMA_FILE_PRIVATE
        runs = native.scan_pagemap(pid, vma.start, vma.end, anon_only=anon_only)
        if track is not None:
            runs, unchanged = track.select(vma, runs)
            for addr, n in unchanged:
                out.add_parent(addr, n)
                progress.pages(n)
        readable = bool(vma.prot & PROT_READ)
        shared = native.scan_pagemap(pid, vma.start, vma.end, anon_only=anon_only, shared=True) \
            if readable and runs else []
        pieces.extend((readable, is_shared, addr, n) for is_shared, addr, n in _split_shared(runs, shared))
    return pieces


def _grouped(pieces: list[Piece], pipes: bool) -> list[tuple[bool, list[tuple[int, int]]]]:
    """(fast, runs) groups: fast is process_vm_readv for pages the process
    alone maps, or with pipes (mm/taskio.py: vmsplice does not pin, the
    frames stay shared) every readable page; the rest by /proc/PID/mem."""
    groups: list[tuple[bool, list[tuple[int, int]]]] = []
    for readable, is_shared, addr, n in pieces:
        how = readable and (pipes or not is_shared)
        if groups and groups[-1][0] == how:
            groups[-1][1].append((addr, n))
        else:
            groups.append((how, [(addr, n)]))
    return groups


def _split_shared(runs: list[tuple[int, int]], shared: list[tuple[int, int]]) -> list[tuple[bool, int, int]]:
    """(in shared, addr, nr_pages) pieces of runs, in address order: the pages
    of `shared` runs (sorted) are read through /proc/PID/mem, because
    process_vm_readv pins the pages it reads, and pinning a page shared
    copy-on-write makes the kernel give the process a copy of its own (the
    frame would no longer be shared with the parent or children)."""
    out: list[tuple[bool, int, int]] = []
    j = 0
    for addr, n in runs:
        end = addr + n * PAGE_SIZE
        while addr < end:
            while j < len(shared) and shared[j][0] + shared[j][1] * PAGE_SIZE <= addr:
                j += 1
            s = shared[j][0] if j < len(shared) else end
            if s > addr:                    # exclusive pages up to the next shared run
                stop = min(s, end)
                out.append((False, addr, (stop - addr) // PAGE_SIZE))
            else:
                stop = min(shared[j][0] + shared[j][1] * PAGE_SIZE, end)
                out.append((True, addr, (stop - addr) // PAGE_SIZE))
            addr = stop
    return out


def _read_batch(pid: int, mem_fd: int, readable: bool, batch: list[tuple[int, int]],
                buf: memoryview) -> int:
    """Read the batch's ranges, concatenated, into buf; returns the byte count."""
    if readable:
        try:
            return native.vm_read_into(pid, batch, buf)
        except OSError as exc:      # EFAULT: some page cannot be read so; try each run by mem
            if exc.errno != errno.EFAULT:
                raise
            log.info("process %d: process_vm_readv: %s; reading the batch by /proc/PID/mem", pid, exc)
    pos = 0
    for addr, n in batch:   # PROT_NONE / write-only: /proc/PID/mem reads with FOLL_FORCE
        try:
            got = os.preadv(mem_fd, [buf[pos:pos + n]], addr)
        except OSError as exc:
            raise UnsupportedObject(f"process {pid}: memory at {addr:#x} ({n // PAGE_SIZE} pages) "
                                    f"cannot be read: {exc.strerror}") from None
        if got != n:
            raise UnsupportedObject(f"process {pid}: memory at {addr:#x}: short read "
                                    f"({got} of {n} bytes)")
        pos += n
    return pos


def dump_shmem(pid: int, vma: mm_pb2.VmaEntry, out: pages.PagesWriter) -> None:
    """Copy the allocated parts of a shmem object through map_files."""
    fd = os.open(proc.path(pid, "map_files", f"{vma.start:x}-{vma.end:x}"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        vma.shmem_size = size
        # one buffer for every read, whole pages: the object's last page may be partial
        buf = memoryview(bytearray(min(pages.READ_CHUNK, -(-size // PAGE_SIZE) * PAGE_SIZE)))
        off = 0
        while off < size:
            try:
                data_at = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:  # ENXIO: no data past off
                break
            hole_at = min(os.lseek(fd, data_at, os.SEEK_HOLE), size)
            pos = data_at
            while pos < hole_at:
                n = os.preadv(fd, [buf[:min(pages.READ_CHUNK, hole_at - pos)]], pos)
                if n <= 0:
                    raise OSError(errno.EIO, f"process {pid}: shared memory {vma.name or SHMEM_NAME} "
                                  f"is shorter than its size ({pos} of {size} bytes)")
                whole = -(-n // PAGE_SIZE) * PAGE_SIZE
                if whole != n:      # the last, partial page: past EOF it reads as zeros
                    buf[n:whole] = bytes(whole - n)
                out.add(pos, buf[:whole])
                pos += n
            off = hole_at
    finally:
        os.close(fd)


def mm_fields(pid: int, remote: Remote) -> mm_pb2.MmEntry:
    st = proc.stat(pid)
    return mm_pb2.MmEntry(
        start_code=st.start_code, end_code=st.end_code, start_data=st.start_data,
        end_data=st.end_data, start_stack=st.start_stack, start_brk=st.start_brk,
        brk=remote.check("brk", 0), arg_start=st.arg_start, arg_end=st.arg_end,
        env_start=st.env_start, env_end=st.env_end, auxv=proc.auxv(pid),
        exe_path=proc.readlink(pid, "exe"))


def dump(pid: int, maps: list[proc.Mapping], remote: Remote, images: ImageDir,
         next_pages_id: Callable[[], int], dumped_shmem: dict[int, int], image_id: int,
         track: ProcessTrack | None = None,
         parent: tuple[int, mm_pb2.MmEntry] | None = None,
         files: DumpFiles | None = None, guard: "Guardian | None" = None) -> mm_pb2.MmEntry:
    """Write mm-ID, pagemap-ID and pages images (ID: the pid inside the tree's
    pid namespace); returns the MmEntry.  track: an incremental dump; parent:
    the parent's host pid and MmEntry (pages shared with it, mm/cow.py);
    files: where mapped deleted files get their ghosts; guard: the dump's
    guardian, told of the page pipes' fds (mm/taskio.py)."""
    mm = mm_fields(pid, remote)
    if mm.exe_path.endswith(" (deleted)"):
        raise UnsupportedObject(f"process {pid}: its executable {mm.exe_path!r} is deleted")
    mm.vmas.extend(vma_entry(pid, m, files) for m in maps if m.name not in SKIPPED)
    mm.aios.extend(aio.dump(pid, remote, mm.vmas))
    mm.mlockall = future_lock(pid, remote.scratch)
    if parent is not None:
        cow.record(pid, parent[0], list(mm.vmas), list(parent[1].vmas))
    private = pages.PagesWriter(images, next_pages_id())
    if track is None:
        count = dump_private_pages(pid, list(mm.vmas), private, remote=remote, guard=guard)
    else:
        track.start(remote, maps)
        try:
            count = dump_private_pages(pid, list(mm.vmas), private, track)
            track.arm(remote, list(mm.vmas))
            track.write_digests(images)
        finally:
            track.close()
    private.finish("pagemap", image_id, track)
    for vma in mm.vmas:
        if not maps_object(vma):
            continue
        if vma.shmid not in dumped_shmem:   # one object may be mapped by many areas and processes
            shm = pages.PagesWriter(images, next_pages_id())
            dump_shmem(pid, vma, shm)
            if memfd.is_memfd(vma.name):
                memfd.dump_mapped(images, proc.path(pid, "map_files", f"{vma.start:x}-{vma.end:x}"),
                                  vma.shmid, vma.name)
            shm.finish("pagemap-shmem", vma.shmid)
            dumped_shmem[vma.shmid] = vma.shmem_size
        vma.shmem_size = dumped_shmem[vma.shmid]
    images.write("mm", [mm], id=image_id)
    log.info("process %d: %d areas, %d private pages", pid, len(mm.vmas), count)
    return mm


# -------------------------------------------------------------- restore ---


def maps_object(vma: mm_pb2.VmaEntry) -> bool:
    """The area maps a shmem object (vma.shmid): shared anonymous memory, a
    memfd mapped shared, or a memfd mapped privately (its own pages on top)."""
    return vma.kind == mm_pb2.VMA_SHMEM or (vma.kind == mm_pb2.VMA_FILE_PRIVATE and vma.shmid != 0)


def shmem_object(images: ImageDir, shmid: int, size: int) -> int:
    """Create a shmem object like MAP_SHARED|MAP_ANONYMOUS does, filled from the
    images, and return an fd for it (the object stays alive through the fd).

    Mapping it in refcr itself and opening /proc/self/map_files gives exactly
    the kind of object the kernel makes for shared anonymous memory, so the
    restored areas look the same ("/dev/zero (deleted)") and several areas or
    processes can map one object at their own offsets.
    """
    if images.exists("memfd-inode", id=shmid):
        return memfd.mapping_object(images, shmid)
    area = mmap.mmap(-1, max(size, PAGE_SIZE), flags=mmap.MAP_SHARED)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(area))
    try:
        fd = os.open(f"/proc/self/map_files/{addr:x}-{addr + len(area):x}", os.O_RDWR | os.O_CLOEXEC)
    finally:
        area.close()
    if images.exists("pagemap-shmem", id=shmid):
        for off, data in pages.read_pages(images, "pagemap-shmem", shmid):
            os.pwrite(fd, data, off)
    return fd


def free_area(size: int, *taken: list[tuple[int, int]]) -> int:
    """An address where `size` bytes overlap none of the given ranges."""
    busy = sorted(r for ranges in taken for r in ranges)
    for candidate in (0x100000000 * k for k in range(1, 1 << 15)):
        end = candidate + size
        if all(end <= s or candidate >= e for s, e in busy):
            return candidate
    raise RestoreError("no free address range for the restorer's code page")


def unmap_all_but(remote: Remote, keep: list[tuple[int, int]], task_size: int) -> None:
    """munmap every gap between the areas to keep (the puppet's old memory)."""
    cursor = 0
    for start, end in sorted(keep) + [(task_size, task_size)]:
        if start > cursor:
            remote.check("munmap", cursor, start - cursor)
        cursor = max(cursor, end)


def move_special_areas(remote: Remote, puppet_maps: list[proc.Mapping],
                       vmas: list[mm_pb2.VmaEntry], parking: int) -> None:
    """mremap the puppet's vdso/vvar areas to where the dumped ones were, and
    unmap those the dumped process had unmapped.

    First every area is parked at a free address so that a target address
    that overlaps another special area's current place is never a problem.
    """
    current = {m.name: m for m in puppet_maps if m.name in SPECIAL_KINDS}
    wanted = {vma.name: vma for vma in vmas if vma.kind in SPECIAL_KINDS.values()}
    for name in [n for n in current if n not in wanted]:     # the process had unmapped it
        remote.check("munmap", current[name].start, current[name].size)
        del current[name]
    for name, m in current.items():
        if wanted[name].end - wanted[name].start != m.size:
            raise RestoreError(f"{name} has another size than at dump time (was the kernel changed?)")
    for name in wanted:
        if name not in current:
            raise RestoreError(f"this kernel provides no {name}, the dumped process had one")
    parked = {}
    for name, m in current.items():
        parked[name] = remote.check("mremap", m.start, m.size, m.size,
                                    MREMAP_MAYMOVE | MREMAP_FIXED, parking)
        parking += m.size
    for name, vma in wanted.items():
        remote.check("mremap", parked[name], vma.end - vma.start, vma.end - vma.start,
                     MREMAP_MAYMOVE | MREMAP_FIXED, vma.start)


@dataclass
class AreaMapper:
    """Maps the dumped areas into a puppet.

    The calls are queued and run in batches (Remote.batch: one ptrace round
    trip per batch, not per call); flush() runs what is queued, and
    restore() flushes before the pages are written and at the end.  A file
    area is pidfd_getfd + mmap + close: the first getfd of a batch runs on
    its own and tells the fd number T the puppet gives out; every later one
    in the batch gets T again (T is the lowest free fd and only these calls
    change the table), checked after the batch.  With getfd_slot < 0 the
    fds come from install_fd one round trip each."""

    remote: Remote
    install_fd: Callable[[int], int]     # local fd -> temporary fd number in the puppet
    shmem_fds: dict[int, int]            # shmid -> local fd of the recreated object
    root: Root                           # where dumped paths are looked up (fs/namei.py)
    getfd_slot: int = -1                 # the puppet's pidfd of refcr: getfd in the batches
    # FileEntry id -> refcr's fd of that description (RestoreFiles.open): a deleted file's ghost
    open_file: Callable[[int], int] | None = None
    _calls: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    _locals: list[int] = field(default_factory=list)      # local fds the queued getfds take
    _fd: int = -1                        # T, open in the puppet while calls using it are queued

    BATCH = BATCH_MAX - 8                # calls queued before a flush (a mapped file adds 3 at once)
    LOCALS = 64                          # local fds held open before a flush

    def _queue(self, name: str, *args: int) -> None:
        self._calls.append((name, args))
        if len(self._calls) >= self.BATCH or len(self._locals) >= self.LOCALS:
            self.flush()

    def flush(self) -> None:
        calls, self._calls = self._calls, []
        fd, self._fd = self._fd, -1
        try:
            got = self.remote.batch(calls, stop_on_error=True) if calls else []
        finally:
            for local in self._locals:
                os.close(local)
            self._locals.clear()
        for (name, _), ret in zip(calls, got, strict=True):
            if ret is not None and -4096 < ret < 0:
                if fd >= 0:
                    self.remote.call("close", fd)     # its close may not have run
                raise RemoteError(self.remote.tid, name, -ret)
            if name == "pidfd_getfd" and ret != fd:
                raise RestoreError(f"task {self.remote.tid}: pidfd_getfd gave fd {ret}, not {fd}, "
                                   "for a mapped file")

    def map(self, vma: mm_pb2.VmaEntry) -> None:
        if vma.kind == mm_pb2.VMA_AIO_RING:     # made again by io_setup and moved there: aio.restore
            return
        length = vma.end - vma.start
        flags = MAP_FIXED | (vma.flags & MAP_FLAGS_KEPT)
        if vma.kind == mm_pb2.VMA_ANON:
            self._queue("mmap", vma.start, length, private_prot(vma), flags | MAP_ANONYMOUS, -1, 0)
            return
        if vma.kind == mm_pb2.VMA_SHMEM:
            self._map_fd(vma, os.dup(self.shmem_fds[vma.shmid]), vma.prot)
            return
        if vma.kind == mm_pb2.VMA_SYSVSHM:
            self.flush()
            sysv.sysvshm_attach(self.remote, vma)
            return
        if vma.shmid:               # a memfd mapped privately: the object its fds and shared areas have
            self._map_fd(vma, self._object_fd(vma), private_prot(vma))
            return
        if vma.file_id:             # a deleted file: its ghost, made once for its fds and areas
            if self.open_file is None:
                raise RestoreError(f"mm image: area {vma.start:#x} maps file id {vma.file_id}, no file table")
            prot = private_prot(vma) if vma.kind == mm_pb2.VMA_FILE_PRIVATE else vma.prot
            self._map_fd(vma, os.dup(self.open_file(vma.file_id)), prot)
            return
        given = host.update_vma_map(vma.path, vma.start, vma.pgoff)     # UPDATE_VMA_MAP
        local, pgoff = given if given is not None else (-1, vma.pgoff)
        if given is None:
            try:
                local = self.root.open(vma.path, vma.fmode, "area", namei.MAPPABLE)
            except OSError as exc:
                raise RestoreError(f"cannot open mapped file {vma.path}: {exc.strerror}") from exc
        prot = private_prot(vma) if vma.kind == mm_pb2.VMA_FILE_PRIVATE else vma.prot
        self._map_fd(vma, local, prot, pgoff)

    def _object_fd(self, vma: mm_pb2.VmaEntry) -> int:
        """The memfd object, opened as the task had it (a read-only open shows
        in the area's map_files link)."""
        kept = self.shmem_fds[vma.shmid]
        if vma.fmode == os.O_RDWR:
            return os.dup(kept)
        return os.open(f"/proc/self/fd/{kept}", os.O_RDONLY | os.O_CLOEXEC)

    def _map_fd(self, vma: mm_pb2.VmaEntry, local: int, prot: int, pgoff: int | None = None) -> None:
        flags = MAP_FIXED | (vma.flags & MAP_FLAGS_KEPT)
        args = (vma.start, vma.end - vma.start, prot, flags)
        offset = vma.pgoff if pgoff is None else pgoff
        if self.getfd_slot < 0:
            self.flush()
            try:
                remote_fd = self.install_fd(local)
            finally:
                os.close(local)
            try:
                self.remote.check("mmap", *args, remote_fd, offset)
            finally:
                self.remote.call("close", remote_fd)
            return
        if self._fd < 0:
            try:
                self._fd = self.install_fd(local)
            finally:
                os.close(local)
        else:
            self._locals.append(local)
            self._calls.append(("pidfd_getfd", (self.getfd_slot, local, 0)))
        self._calls.append(("mmap", (*args, self._fd, offset)))
        self._queue("close", self._fd)

    def finish(self, vma: mm_pb2.VmaEntry) -> None:
        """Final protection and advice, after the pages were written; guard
        regions, then the mlock (the kernel refuses guards in locked areas)."""
        if vma.kind == mm_pb2.VMA_AIO_RING:     # not there yet: aio.restore sets its own
            return
        if vma.kind in (mm_pb2.VMA_ANON, mm_pb2.VMA_FILE_PRIVATE) and vma.prot != vma.prot | PROT_READ | PROT_WRITE:
            self._queue("mprotect", vma.start, vma.end - vma.start, vma.prot)
        for advice in vma.madvise:
            self._queue("madvise", vma.start, vma.end - vma.start, advice)
        for addr, n in zip(vma.guards[::2], vma.guards[1::2], strict=True):
            if not vma.start <= addr < addr + n * PAGE_SIZE <= vma.end:
                raise RestoreError(f"mm image: guard region {addr:#x}+{n} pages is outside its area")
            self._queue("madvise", addr, n * PAGE_SIZE, MADV_GUARD_INSTALL)
        if vma.lock != mm_pb2.VMA_UNLOCKED:
            self._queue("mlock2", vma.start, vma.end - vma.start,
                        MLOCK_ONFAULT if vma.lock == mm_pb2.VMA_LOCKED_ONFAULT else 0)


def private_prot(vma: mm_pb2.VmaEntry) -> int:
    """Protection to map a private area with while its pages are written:
    writable, unless it was never charged (no VM_ACCOUNT) and is not writable
    now: mapping it writable would charge it (smaps "ac") for good."""
    if vma.accounted or vma.prot & PROT_WRITE:
        return vma.prot | PROT_READ | PROT_WRITE
    return vma.prot


def write_private_pages(remote: Remote, images: ImageDir, image_id: int,
                        only: list[tuple[int, int]] | None = None,
                        install_fd: Callable[[int], int] | None = None) -> int:
    """process_vm_writev per batch; a batch that touches an area mapped without
    write permission (see private_prot) goes through /proc/PID/mem instead.
    only: sorted (start, end) ranges outside which no page is written.  With
    install_fd (refcr's fd -> the puppet's), a large full image is read by
    the puppet itself (mm/taskio.py)."""
    if install_fd is not None and only is None:
        count = taskio.read_pages_in(remote, images, image_id, install_fd,
                                     lambda ranges, data: _write_batch(remote, ranges, data))
        if count is not None:
            progress.pages(count)
            return count
    count = 0
    for ranges, data in pages.clipped(pages.read_page_batches(images, "pagemap", image_id, only), only):
        _write_batch(remote, ranges, data)
        count += len(data) // PAGE_SIZE
        progress.pages(len(data) // PAGE_SIZE)
    return count


def _write_batch(remote: Remote, ranges: list[tuple[int, int]], data: bytes | memoryview) -> None:
    try:
        native.vm_write(remote.tid, ranges, data)
    except OSError as exc:
        if exc.errno != errno.EFAULT:
            raise
        off = 0
        for addr, length in ranges:
            try:
                remote.write(addr, data[off:off + length])
            except OSError as exc2:     # EIO: a file-backed page past the file's end, say
                raise RestoreError(f"task {remote.tid}: cannot write the dumped pages at "
                                   f"{addr:#x}-{addr + length:#x}: {exc2.strerror}") from None
            off += length


def set_mm_fields(remote: Remote, mm: mm_pb2.MmEntry, exe_fd: int) -> None:
    """PR_SET_MM_MAP: code/data/brk/stack/args/env boundaries, auxv and exe."""
    auxv = struct.pack(f"<{len(mm.auxv)}Q", *mm.auxv)
    map_size = struct.calcsize("<12QII")
    auxv_addr, map_addr = remote.put(auxv, bytes(map_size))
    fields = (mm.start_code, mm.end_code, mm.start_data, mm.end_data, mm.start_brk,
              mm.brk, mm.start_stack, mm.arg_start, mm.arg_end, mm.env_start,
              mm.env_end, auxv_addr)
    remote.write(map_addr, struct.pack("<12QII", *fields, len(auxv), exe_fd & 0xFFFFFFFF))
    remote.check("prctl", PR_SET_MM, PR_SET_MM_MAP, map_addr, map_size, 0)


def premap(remote: Remote, mm: mm_pb2.MmEntry, images: ImageDir, mapper: AreaMapper, image_id: int,
           inherited: dict[int, mm_pb2.VmaEntry], children: list[mm_pb2.MmEntry],
           parking: int) -> dict[int, mm_pb2.VmaEntry]:
    """Before a puppet forks its children (mm/cow.py): keep the inherited areas
    it shares pages of with its parent and unmap the others, move its special
    areas, map and fill the areas its children will share pages of; returns
    its areas now ready (start -> entry), which restore() leaves alone."""
    keep = cow.kept(mm, inherited)
    cow.drop_inherited(remote, inherited, keep)
    move_special_areas(remote, proc.ranges(remote.tid), list(mm.vmas), parking)
    ready = {**keep, **cow.wanted(mm, children)}
    for start, vma in sorted(ready.items()):
        if start not in keep:
            mapper.map(vma)
    mapper.flush()
    written = write_private_pages(remote, images, image_id, cow.to_write(ready, keep)) if ready else 0
    cow.zap_absent(remote, images, image_id, keep)
    if ready:
        log.info("process %d: %d areas ready before its children are forked (%d kept), %d pages written",
                 remote.tid, len(ready), len(keep), written)
    return ready


def restore(remote: Remote, mm: mm_pb2.MmEntry, images: ImageDir, mapper: AreaMapper, image_id: int,
            ready: dict[int, mm_pb2.VmaEntry] | None = None) -> None:
    """Map every dumped area (the puppet is empty but for its specials and its
    ready areas, see premap) and fill it."""
    ready = ready or {}
    for vma in mm.vmas:
        if vma.kind not in SPECIAL_KINDS.values() and vma.start not in ready:
            mapper.map(vma)
    mapper.flush()
    written = write_private_pages(remote, images, image_id, cow.outside(ready) if ready else None,
                                  mapper.install_fd)
    for vma in mm.vmas:
        if vma.kind not in SPECIAL_KINDS.values():
            mapper.finish(vma)
    mapper.flush()
    aio.restore(remote, mm, mapper.install_fd, image_id)     # before MCL_FUTURE: the rings' lock is their own
    if mm.mlockall:
        if mm.mlockall & ~(MCL_FUTURE | MCL_ONFAULT):
            raise RestoreError(f"mm image: bad mlockall flags {mm.mlockall:#x}")
        mapper.remote.check("mlockall", mm.mlockall)
    log.info("process %d: %d areas mapped, %d private pages written", remote.tid, len(mm.vmas), written)
