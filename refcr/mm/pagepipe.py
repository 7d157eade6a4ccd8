"""Pages by pipe: how a dump copies a process's own pages with one copy
instead of two (CRIU's page-pipe, done with injected syscalls).

process_vm_readv copies each page into refcr's buffer and write() copies it
again into the page cache of pages-N.img.  Here the task vmsplice()s its
pages into pipes -- a pipe buffer then holds a reference to the frame,
nothing is copied -- and refcr splice()s each pipe into the pages file: the
one copy.  Measured on this machine: 1 GiB of anonymous memory, 2.1-3.5 s
of CPU by process_vm_readv + write, 0.5-1.3 s by vmsplice + splice.

Per process, only when it has MIN_BYTES or more to copy this way:

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

Only pages that the process alone maps and can read come this way: memory.py
reads shared ones through /proc/PID/mem (see there), unreadable ones too;
an incremental dump (mm/track.py compares every page in refcr) does not use
pipes.

refcr's death: the guardian is told the numbers the fds will get before
they are made (the lowest free ones: every thread is stopped, nothing else
takes fds) and their inodes once they exist; it closes those of them that
are pipes -- with those inodes, when it knew them.  Not covered: refcr dying
inside the pipe2 batch, and the task making a pipe of its own at one of the
numbers before the guardian seizes it (a few milliseconds), would cost the
task that pipe.

Costs: 2 fds per pipe in the task and one in refcr for the dump's
duration; three round trips more per process; pipe memory is the frames
themselves (references), at most READ_CHUNK at a time.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from refcr import fault
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

Ranges = list[tuple[int, int]]              # (address, bytes)


def worth_it(groups: list[tuple[bool, Ranges]]) -> bool:
    """groups as memory.py's _runs_to_read gives them, runs in pages."""
    total = sum(n for readable, runs in groups if readable for _, n in runs)
    return total * PAGE_SIZE >= MIN_BYTES


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

    def close(self) -> None:
        for fd in self.read_ends:
            os.close(fd)
        self.read_ends = []
        if self.task_fds:
            fds, self.task_fds = self.task_fds, []
            self.remote.check_batch([("close", (fd,)) for fd in fds])
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
