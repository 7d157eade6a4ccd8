"""File locks held through a description: flock(2), POSIX (fcntl) and OFD
locks, and leases (F_SETLEASE), as the fdinfo "lock:" lines show them.

They are dumped only with -l/--file-locks; without it a held lock makes the
dump fail, naming it.

Owners, as the kernel has them:
- flock, OFD locks and leases belong to the open file description: every
  process sharing it (after fork) shows them in its fdinfo.  They are kept
  in the description's entry (FileLockEntry.owner: the pid that took a
  flock or lease, shown in fdinfo) -- the kind's own entry where it has a
  locks field (regular files, ghosts, memfds), else the generic FileEntry
  (DumpFiles.add; FIFOs, pipes, devices, sockets, anonymous inodes: any
  file can be flock'ed) -- and taken again once per description
  (RestoreFiles.once), in the owner's puppet when the owner still holds the
  description (so the pid in fdinfo is the same), else in the first puppet
  that gets it.
- POSIX locks belong to a process (its files_struct) and show only in its
  own fdinfo, on the description it locked through.  They are kept in that
  process's FdinfoEntry.locks (first fd of the description only: a second
  fd of the same description shows the same lock) and taken again there.
  So a POSIX lock of a parent on an fd its children share comes back held
  by the parent alone, and a child's own POSIX lock by the child.

A lease comes back with F_SETLEASE in the owner, which needs what the
kernel always needs (the caller owns the file or has CAP_LEASE; no other
writer for a read lease, no other opener for a write lease).  Taking it
makes the taker the description's F_SETOWN owner, so the owner is cleared
at once and set again from the image afterwards (fs/fown.py; the kinds'
after_install take the locks first).  A lease being broken ("BREAKING",
its line showing what the break leads to) is taken again and broken again
the way the kernel starts a break: refcr opens the file once more through
the owner's /proc fd link with O_NONBLOCK (for reading: a write lease is
downgraded; for writing: the lease is to go), which fails with EWOULDBLOCK
and leaves the break pending.  The owner is still cleared then, so no
SIGIO of refcr's open reaches the task.  A lease broken to UNLCK comes back
as a read lease: the kernel shows a read and a write lease being removed
alike (F_GETLEASE, fdinfo), and a read lease is the one a file with other
openers can take.  Deviation: the kernel's break timer
(/proc/sys/fs/lease-break-time) starts again at restore, so the holder
gets the whole time again before the kernel ends the lease itself.
Waiters ("->" lines: an open() waiting for the break, for instance) are
blocked calls, restarted by the task itself.  Locks of other kinds
(delegations of nfsd, mandatory) are refused.
"""
from __future__ import annotations

import os
import struct

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.fd import KCMP_FILE, DumpFiles, FdTarget, RestoreFiles, describe
from refcr.pb import fdinfo_pb2, filekinds_pb2
from refcr.ptrace import native, proc
from refcr.ptrace.tracee import RemoteError

FLOCK, POSIX, OFD, LEASE = 1, 2, 3, 4
_KINDS = {"FLOCK": FLOCK, "POSIX": POSIX, "OFDLCK": OFD, "LEASE": LEASE}
NAMES = {FLOCK: "flock", POSIX: "POSIX lock", OFD: "OFD lock", LEASE: "lease (F_SETLEASE)"}
LOCK_SH, LOCK_EX, LOCK_NB = 1, 2, 4
F_RDLCK, F_WRLCK = 0, 1
F_SETOWN, F_SETLK, F_OFD_SETLK, F_SETLEASE = 8, 6, 37, 1024
BREAK_TO_READ, BREAK_TO_UNLCK = 1, 2        # FileLockEntry.lease_break
_BREAKING = {"READ": BREAK_TO_READ, "UNLCK": BREAK_TO_UNLCK}
_FLOCK = struct.Struct("<hh4xqqi4x")        # struct flock


def held(t: FdTarget) -> list[filekinds_pb2.FileLockEntry]:
    """The locks t's fdinfo lists (waiters, marked "->", are left out), with
    the owner as a host pid (0 for OFD locks).  The fdinfo read by
    fd_target had no lock line: none (the tree is frozen), no second read."""
    out: list[filekinds_pb2.FileLockEntry] = []
    if "lock" not in t.info:
        return out
    with open(proc.path(t.pid, "fdinfo", str(t.fd))) as f:
        lines = [line for line in f if line.startswith("lock:")]
    for line in lines:
        words = line.split(":", 1)[1].split()
        if len(words) < 8 or "->" in words:
            continue
        kind = _KINDS.get(words[1])
        if kind is None:
            raise UnsupportedObject(f"{describe(t)}: lock of type {words[1]} is not supported")
        write, lease_break = words[3] == "WRITE", 0
        if kind == LEASE and words[2] != "ACTIVE":
            lease_break = _lease_break(t, words[2], words[3])
            write = lease_break == BREAK_TO_READ     # only a write lease is downgraded
        start, end = int(words[6]), words[7]
        length = 0 if end == "EOF" else int(end) - start + 1
        out.append(filekinds_pb2.FileLockEntry(kind=kind, write=write, start=start, len=length,
                                               owner=max(int(words[4]), 0), lease_break=lease_break))
    return out


def _lease_break(t: FdTarget, state: str, target: str) -> int:
    if state != "BREAKING" or target not in _BREAKING:
        raise UnsupportedObject(f"{describe(t)}: a lease in state {state} {target} is not supported")
    return _BREAKING[target]


def _allowed(t: FdTarget, ctx: DumpFiles, found: list[filekinds_pb2.FileLockEntry]) -> None:
    if found and not ctx.opts.file_locks:
        raise UnsupportedObject(f"{describe(t)} holds a {NAMES[found[0].kind]} (dump with -l/--file-locks)")


def dump(t: FdTarget, ctx: DumpFiles) -> list[filekinds_pb2.FileLockEntry]:
    """The description's own locks (flock, OFD, lease), for its kind's entry;
    the owner becomes a pid of the tree, or 0 when the owner does not hold
    the description (any holder may take it again)."""
    mine = [lk for lk in held(t) if lk.kind != POSIX]
    _allowed(t, ctx, mine)
    for lk in mine:
        lk.owner = _holder_vpid(t, lk.owner, ctx)
    return mine


def dump_posix(t: FdTarget, ctx: DumpFiles) -> list[filekinds_pb2.FileLockEntry]:
    """The POSIX locks t's process holds through t's description."""
    mine = [lk for lk in held(t) if lk.kind == POSIX]
    _allowed(t, ctx, mine)
    for lk in mine:
        lk.owner = 0          # the process whose fd table this is
    return mine


def _holder_vpid(t: FdTarget, pid: int, ctx: DumpFiles) -> int:
    if pid <= 0 or pid not in ctx.pids:
        return 0
    for fd in proc.fds(pid):
        try:
            if native.kcmp(pid, t.pid, KCMP_FILE, fd, t.fd) == 0:
                return int(proc.status(pid)["NSpid"].split()[-1])
        except OSError:
            continue
    return 0


def restore(locks, fd: int, puppet, path: str, ctx: RestoreFiles) -> None:
    """Take a description's locks again (from its kind's after_install):
    each once, in its owner (none: the first holder)."""
    for i, lk in enumerate(locks):
        if (not lk.owner or lk.owner == puppet.vpid) and ctx.once(f"lock-{i}"):
            take([lk], fd, puppet, path)


def restore_fd(puppet, fe: fdinfo_pb2.FdinfoEntry, ctx: RestoreFiles) -> None:
    """After fd fe.fd is installed (RestoreFiles.fd_hook): the process's own
    POSIX locks through it, and the locks its description keeps in the
    generic FileEntry (kinds without a locks field: FIFOs, devices, ...)."""
    if fe.locks:
        take(fe.locks, fe.fd, puppet, f"fd {fe.fd}")
    entry = ctx.entry(fe.id)
    if entry.locks:
        restore(entry.locks, fe.fd, puppet, f"fd {fe.fd} ({entry.WhichOneof('file')})", ctx)


def take(locks, fd: int, puppet, path: str) -> None:
    r = puppet.remote
    for lk in locks:
        try:
            if lk.kind == FLOCK:
                r.check("flock", fd, (LOCK_EX if lk.write else LOCK_SH) | LOCK_NB)
            elif lk.kind == LEASE:
                r.check("fcntl", fd, F_SETLEASE, F_WRLCK if lk.write else F_RDLCK)
                r.check("fcntl", fd, F_SETOWN, 0)       # the taker became the owner: fown.py sets it
                if lk.lease_break:
                    _break_lease(puppet, fd, lk.lease_break, path)
            else:
                addr, = r.put(_FLOCK.pack(F_WRLCK if lk.write else F_RDLCK, 0, lk.start, lk.len, 0))
                r.check("fcntl", fd, F_SETLK if lk.kind == POSIX else F_OFD_SETLK, addr)
        except RemoteError as exc:
            raise RestoreError(f"process {puppet.vpid}: {path}: cannot take its {NAMES.get(lk.kind, 'lock')} "
                               f"again: {exc}") from exc


def _break_lease(puppet, fd: int, lease_break: int, path: str) -> None:
    """Start the lease's break again, as an opener would: an O_NONBLOCK open
    of the file fails with EWOULDBLOCK and leaves the break pending."""
    mode = os.O_RDONLY if lease_break == BREAK_TO_READ else os.O_WRONLY
    try:
        local = os.open(f"/proc/{puppet.pid}/fd/{fd}", mode | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except BlockingIOError:
        return
    except OSError as exc:
        raise RestoreError(f"process {puppet.vpid}: {path}: cannot break its lease again: {exc.strerror}") from exc
    os.close(local)
    raise RestoreError(f"process {puppet.vpid}: {path}: its lease did not start breaking "
                       f"(an open for {'reading' if mode == os.O_RDONLY else 'writing'} went through)")
