"""File locks held through a description: flock(2), POSIX (fcntl) and OFD
locks, as the fdinfo "lock:" lines show them.

They are dumped only with -l/--file-locks; without it a held lock makes the
dump fail, naming it.  Restore takes them again from inside the task (a POSIX
lock belongs to the process that took it) once its fd table is installed.
"""
from __future__ import annotations

import struct

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.fd import DumpFiles, FdTarget, describe
from refcr.pb import filekinds_pb2
from refcr.ptrace import proc
from refcr.ptrace.tracee import RemoteError

FLOCK, POSIX, OFD = 1, 2, 3
_KINDS = {"FLOCK": FLOCK, "POSIX": POSIX, "OFDLCK": OFD}
LOCK_SH, LOCK_EX, LOCK_NB = 1, 2, 4
F_RDLCK, F_WRLCK = 0, 1
F_SETLK, F_OFD_SETLK = 6, 37
_FLOCK = struct.Struct("<hh4xqqi4x")        # struct flock


def held(t: FdTarget) -> list[filekinds_pb2.FileLockEntry]:
    """The locks t's fdinfo lists (waiters, marked "->", are left out)."""
    out = []
    with open(proc.path(t.pid, "fdinfo", str(t.fd))) as f:
        lines = [line for line in f if line.startswith("lock:")]
    for line in lines:
        words = line.split(":", 1)[1].split()
        if len(words) < 8 or "->" in words:
            continue
        kind = _KINDS.get(words[1])
        if kind is None:
            raise UnsupportedObject(f"{describe(t)}: lock of type {words[1]} is not supported")
        write = words[3] == "WRITE"
        start, end = int(words[6]), words[7]
        length = 0 if end == "EOF" else int(end) - start + 1
        out.append(filekinds_pb2.FileLockEntry(kind=kind, write=write, start=start, len=length))
    return out


def dump(t: FdTarget, ctx: DumpFiles) -> list[filekinds_pb2.FileLockEntry]:
    locks = held(t)
    if locks and not ctx.opts.file_locks:
        what = {FLOCK: "flock", POSIX: "POSIX lock", OFD: "OFD lock"}[locks[0].kind]
        raise UnsupportedObject(f"{describe(t)} holds a {what} (dump with -l/--file-locks)")
    return locks


def restore(locks, fd: int, puppet, path: str) -> None:
    r = puppet.remote
    for lk in locks:
        try:
            if lk.kind == FLOCK:
                r.check("flock", fd, (LOCK_EX if lk.write else LOCK_SH) | LOCK_NB)
            else:
                addr, = r.put(_FLOCK.pack(F_WRLCK if lk.write else F_RDLCK, 0, lk.start, lk.len, 0))
                r.check("fcntl", fd, F_SETLK if lk.kind == POSIX else F_OFD_SETLK, addr)
        except RemoteError as exc:
            raise RestoreError(f"{path}: cannot take its lock again: {exc}") from exc
