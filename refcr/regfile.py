"""Files opened by path: regular files, directories and the harmless
character devices (/dev/null, zero, full, random, urandom)."""
from __future__ import annotations

import os
import stat as stat_mod

from refcr.errors import RestoreError, UnsupportedObject
from refcr.files import DumpFiles, FdTarget, RestoreFiles, check_type, describe
from refcr.log import log
from refcr.pb import files_pb2

MEM_MAJOR = 1                      # /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom
MEM_MINORS = {3, 5, 7, 8, 9}
NOT_ON_REOPEN = os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_NOCTTY


def _is_mem_device(st: os.stat_result) -> bool:
    return (stat_mod.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == MEM_MAJOR
            and os.minor(st.st_rdev) in MEM_MINORS)


class RegFileKind:
    field = "reg"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return (stat_mod.S_ISREG(t.st.st_mode) or stat_mod.S_ISDIR(t.st.st_mode)
                or _is_mem_device(t.st))

    def dump(self, t: FdTarget, ctx: DumpFiles) -> files_pb2.RegFileEntry:
        if not t.link.startswith("/") or t.link.endswith(" (deleted)"):
            raise UnsupportedObject(f"{describe(t)}: the file is not reachable by its path")
        return files_pb2.RegFileEntry(path=t.link, flags=t.flags, pos=int(t.info.get("pos", "0")),
                                      mode=t.st.st_mode, size=t.st.st_size, rdev=t.st.st_rdev)

    def open(self, e: files_pb2.RegFileEntry, ctx: RestoreFiles) -> int:
        try:
            fd = os.open(ctx.resolve(e.path), (e.flags & ~NOT_ON_REOPEN) | os.O_CLOEXEC)
        except OSError as exc:
            raise RestoreError(f"cannot reopen {e.path}: {exc.strerror}") from exc
        try:
            check_type(e.path, fd, e.mode)
            st = os.fstat(fd)
            if stat_mod.S_ISREG(e.mode) and st.st_size != e.size:
                log.warning("%s: size changed since the dump (%d -> %d)", e.path, e.size, st.st_size)
            if e.pos and not stat_mod.S_ISCHR(e.mode):
                os.lseek(fd, e.pos, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return fd


KINDS = [RegFileKind()]
