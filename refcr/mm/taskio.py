"""Page copies done by the task itself: a dump's pages go by vmsplice into
pipes, a restore's by preadv from the pages file.  Either way refcr's own
copy of the data (process_vm_readv/writev through a buffer or a mapping of
the pages file) is gone.

Dump (CRIU's page-pipe, done with injected syscalls).  process_vm_readv
copies each page into refcr's buffer and write() copies it again into the
page cache of pages-N.img.  Here the task vmsplice()s its pages into pipes
-- a pipe buffer then holds a reference to the frame, nothing is copied --
and refcr splice()s each pipe into the pages file: the one copy.  Per
process, only when it has MIN_BYTES or more of readable pages:

  - set-up, two round trips: PIPES pipe2(O_NONBLOCK|O_CLOEXEC) in one
    batch, F_SETPIPE_SZ of each to PIPE_BYTES in another (the default
    pipe-max-size: root without CAP_SYS_RESOURCE may not go beyond it);
    refcr takes the read ends with pidfd_getfd;
  - one batch of vmsplice calls per PIPES * PIPE_BYTES (READ_CHUNK) of
    pages, the iovecs in the scratch buffer.  O_NONBLOCK: a full pipe never
    blocks the task inside an injected call; the kernel may take less than
    asked (or fail: EFAULT, ENOMEM), and the rest of that pipe's ranges is
    read with process_vm_readv as before (the caller's `fallback`);
  - one batch closing the task's ends.  The fds are gone before the fd
    table is dumped (dump.py dumps fds after memory), also when the dump
    fails (finally).

Every readable page comes this way, also one shared copy-on-write with a
parent or child: vmsplice takes page references without pinning them, so
the kernel does not unshare the page (process_vm_readv pins, which is why
memory.py reads shared pages through /proc/PID/mem without pipes; measured:
the frame stays the same in both processes).  Unreadable areas go through
/proc/PID/mem; an incremental dump (mm/track.py compares every page in
refcr) does not use pipes.

refcr's death during a dump: the guardian is told the numbers the fds will
get before they are made (the lowest free ones: every thread is stopped,
nothing else takes fds) and their inodes once they exist; it closes those
of them that are pipes -- with those inodes, when it knew them.  Not
covered: refcr dying inside the pipe2 batch, and the task making a pipe of
its own at one of the numbers before the guardian seizes it (a few
milliseconds), would cost the task that pipe.

Restore (CRIU's restorer reads the pages the same way).  The puppet gets
the pages file (pidfd_getfd) and preadv()s it into its areas, PREADV_IOVS
iovecs per call and the calls in batches (as many as the scratch holds
iovecs): the page cache is copied straight into the puppet's fresh pages.
Only for a full image (no pages in a parent image, no `only` clipping of
mm/cow.py) of MIN_BYTES or more; a call that reads short (EFAULT: an area
mapped without write permission, see memory.private_prot) has the rest of
its ranges written by the caller's old path.

Measured (quiet machine, 6 alternating runs, `dump -R` of 1 GiB of
anonymous memory): 1.142 -> 0.725 s wall.  Costs: 2 fds per pipe in the
task and one in refcr for the dump's duration; three round trips more per
process at dump, two at restore; pipe memory is the frames themselves
(references), at most READ_CHUNK at a time.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from refcr import fault
from refcr.errors import RefcrError, RestoreError
from refcr.images.imagedir import ImageDir
from refcr.log import log
from refcr.mm import pages
from refcr.ptrace import native, proc
from refcr.ptrace.syscalls import PAGE_SIZE
from refcr.ptrace.tracee import Remote

if TYPE_CHECKING:
    from refcr.ptrace.guardian import Guardian

PIPE_BYTES = 1 << 20                        # /proc/sys/fs/pipe-max-size's default
PIPES = pages.READ_CHUNK // PIPE_BYTES      # one batch of vmsplice fills a READ_CHUNK
MIN_BYTES = 4 << 20                         # below: the set-up costs more than the copy saves
F_SETPIPE_SZ = 1031
SPLICE_F_NONBLOCK = 2
IOVEC = struct.Struct("<QQ")
PREADV_IOVS = 1024                          # UIO_MAXIOV
PREADV_BYTES = 256 << 20                    # per call: a bounded time inside one syscall

Ranges = list[tuple[int, int]]              # (address, bytes)


def worth_it(readable_pages: int) -> bool:
    return readable_pages * PAGE_SIZE >= MIN_BYTES


@dataclass
class PagePipes:
    """The pipes of one process's dump: the task's ends and refcr's read ends."""

    pid: int
    remote: Remote
    guard: "Guardian | None"
    task_fds: list[int] = field(default_factory=list)          # read, write, read, write ...
    read_ends: list[int] = field(default_factory=list)         # refcr's, one per pipe

    @property
    def write_ends(self) -> list[int]:
        return self.task_fds[1::2]

    def copy(self, batch: Ranges, out: pages.PagesWriter, fallback: Callable[[Ranges], None]) -> int:
        """The batch's ranges, in order, into out; returns the bytes copied."""
        per_pipe = _split(batch, len(self.read_ends))
        iovs = [b"".join(IOVEC.pack(a, n) for a, n in rs) for rs in per_pipe]
        addrs = self.remote.put(*iovs)
        got = self.remote.batch([("vmsplice", (w, addr, len(rs), SPLICE_F_NONBLOCK))
                                 for w, addr, rs in zip(self.write_ends, addrs, per_pipe)])
        fault.kill_point("mid-pages")
        fault.point("dump-mid-pages")
        for rfd, rs, r in zip(self.read_ends, per_pipe, got):
            moved = r if r is not None and r > 0 else 0
            head, rest = _cut(rs, moved)
            if moved:
                out.add_spliced(head, rfd, moved)
            if rest:
                if r is not None and r < 0:
                    log.debug("process %d: vmsplice: %s; reading the rest", self.pid, os.strerror(-r))
                fallback(rest)
        return sum(n for _, n in batch)

    def close(self, failing: bool = False) -> None:
        """Close both sides.  failing: the dump is failing already, and its
        error is the one to report; a failure here is only logged (the
        guardian's undo does not cover a task refcr still holds)."""
        for fd in self.read_ends:
            os.close(fd)
        self.read_ends = []
        if self.task_fds:
            fds, self.task_fds = self.task_fds, []
            try:
                self.remote.check_batch([("close", (fd,)) for fd in fds])
            except (RefcrError, OSError) as exc:
                if not failing:
                    raise
                log.warning("process %d: the page pipes' fds %s: %s", self.pid, fds, exc)
                return
        if self.guard:
            self.guard.pipes(self.pid, [], [])


def open_pipes(pid: int, remote: Remote, guard: "Guardian | None") -> PagePipes | None:
    """PIPES pipes in the task, their read ends in refcr; None when the task
    cannot have them (no fds left, pipe memory over its user's limit)."""
    if not remote.scratch:
        return None
    p = PagePipes(pid, remote, guard)
    predicted = _free_fds(pid, 2 * PIPES)
    if guard:
        guard.pipes(pid, predicted, None)
    out = remote.put(bytes(8 * PIPES))[0]
    made = remote.batch([("pipe2", (out + 8 * i, os.O_NONBLOCK | os.O_CLOEXEC)) for i in range(PIPES)])
    raw = remote.get(out, 8 * PIPES)
    for i, r in enumerate(made):
        if r == 0:
            p.task_fds.extend(struct.unpack_from("<ii", raw, 8 * i))
    try:
        if len(p.task_fds) != 2 * PIPES:
            log.debug("process %d: pipe2 failed (%s): pages by process_vm_readv", pid, made)
            p.close()
            return None
        if p.task_fds != predicted:
            log.debug("process %d: pipe fds %s, not the predicted %s", pid, p.task_fds, predicted)
        sized = remote.batch([("fcntl", (w, F_SETPIPE_SZ, PIPE_BYTES)) for w in p.write_ends])
        if any(r is None or r < PIPE_BYTES for r in sized):
            log.debug("process %d: F_SETPIPE_SZ: %s: pages by process_vm_readv", pid, sized)
            p.close()
            return None
        pidfd = native.pidfd_open(pid)
        try:
            p.read_ends = [native.pidfd_getfd(pidfd, r) for r in p.task_fds[0::2]]
        finally:
            os.close(pidfd)
    except BaseException:
        p.close()
        raise
    if guard:
        guard.pipes(pid, p.task_fds, [os.fstat(fd).st_ino for fd in p.read_ends])
    return p


def _free_fds(pid: int, n: int) -> list[int]:
    """The n lowest fd numbers that pid's fd table does not use."""
    used = {int(name) for name in os.listdir(proc.path(pid, "fd"))}
    out, fd = [], 0
    while len(out) < n:
        if fd not in used:
            out.append(fd)
        fd += 1
    return out


def _split(batch: Ranges, npipes: int) -> list[Ranges]:
    """batch's ranges cut into at most npipes lists of at most PIPE_BYTES each."""
    out: list[Ranges] = [[]]
    room = PIPE_BYTES
    for addr, n in batch:
        while n:
            if not room:
                out.append([])
                room = PIPE_BYTES
            take = min(n, room)
            out[-1].append((addr, take))
            addr, n, room = addr + take, n - take, room - take
    assert len(out) <= npipes, (len(out), npipes)
    return out


def _cut(ranges: Ranges, nbytes: int) -> tuple[Ranges, Ranges]:
    """ranges split after their first nbytes."""
    head: Ranges = []
    for i, (addr, n) in enumerate(ranges):
        if nbytes >= n:
            head.append((addr, n))
            nbytes -= n
            continue
        rest = ranges[i + 1:]
        if nbytes:
            head.append((addr, nbytes))
            return head, [(addr + nbytes, n - nbytes), *rest]
        return head, [(addr, n), *rest]
    return head, []


# ---------------------------------------------------------------- restore --

@dataclass
class _Read:
    """One preadv call: ranges of the task filled from the file at offset."""

    offset: int
    ranges: Ranges


def read_pages_in(remote: Remote, images: ImageDir, image_id: int, install_fd: Callable[[int], int],
                  fallback: Callable[[Ranges, bytes | memoryview], None]) -> int | None:
    """The puppet preadv()s its private pages from the pages file; the page
    count, or None when this image is not read so (see the module docstring).
    fallback(ranges, data) writes what a call left unread."""
    head, entries = images.read_head("pagemap", id=image_id)
    if any(e.in_parent for e in entries) or not remote.scratch:
        return None
    runs = [(e.vaddr, e.nr_pages * PAGE_SIZE) for e in entries]
    total = sum(n for _, n in runs)
    if total < MIN_BYTES:
        return None
    with images.open_raw("pages", id=head.pages_id) as raw:
        pages.check_size(raw.fileno(), f"pages-{head.pages_id}.img", total)
        fd = install_fd(raw.fileno())
        try:
            for calls in _read_batches(_reads(runs), remote.put_room() // IOVEC.size):
                _run_reads(remote, fd, calls, raw.fileno(), fallback)
        finally:
            remote.defer("close", fd)
    return total // PAGE_SIZE


def _reads(runs: Ranges) -> list[_Read]:
    """runs cut into preadv calls of at most PREADV_IOVS ranges and PREADV_BYTES."""
    out: list[_Read] = []
    off = 0
    cur = _Read(0, [])
    size = 0
    for addr, n in runs:
        while n:
            if len(cur.ranges) == PREADV_IOVS or size == PREADV_BYTES:
                out.append(cur)
                cur, size = _Read(off, []), 0
            take = min(n, PREADV_BYTES - size)
            cur.ranges.append((addr, take))
            addr, n, off, size = addr + take, n - take, off + take, size + take
    if cur.ranges:
        out.append(cur)
    return out


def _read_batches(reads: list[_Read], room: int) -> list[list[_Read]]:
    """Calls grouped so that each group's iovecs fit in `room` iovecs."""
    out: list[list[_Read]] = [[]]
    used = 0
    for r in reads:
        if out[-1] and used + len(r.ranges) > room:
            out.append([])
            used = 0
        out[-1].append(r)
        used += len(r.ranges)
    return out


def _run_reads(remote: Remote, fd: int, calls: list[_Read], local_fd: int,
               fallback: Callable[[Ranges, bytes | memoryview], None]) -> None:
    addrs = remote.put(*[b"".join(IOVEC.pack(a, n) for a, n in r.ranges) for r in calls])
    got = remote.batch([("preadv", (fd, addr, len(r.ranges), r.offset)) for addr, r in zip(addrs, calls)])
    for r, g in zip(calls, got):
        done = g if g is not None and g > 0 else 0
        _, rest = _cut(r.ranges, done)
        if rest:
            log.debug("task %d: preadv at %#x read %s of %d bytes; writing the rest",
                      remote.tid, r.offset, g, sum(n for _, n in r.ranges))
            size = sum(n for _, n in rest)
            data = os.pread(local_fd, size, r.offset + done)
            if len(data) != size:
                raise RestoreError(f"task {remote.tid}: pages file: short read at offset {r.offset + done}")
            fallback(rest, data)
