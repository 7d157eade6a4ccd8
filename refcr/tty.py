"""Terminals.  For now only the --shell-job case: descriptors of the terminal
the dumped process shares with the shell that started it.  They are not
dumped as objects; on restore they become the terminal of `refcr restore`'s
caller (its stdin)."""
from __future__ import annotations

import os
import stat as stat_mod

from refcr.errors import RestoreError, UnsupportedObject
from refcr.files import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.pb import files_pb2

TTY_MAJORS = {4, 5} | set(range(136, 144))      # vt/serial, /dev/tty+ptmx, pts


def is_tty(st: os.stat_result) -> bool:
    return stat_mod.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in TTY_MAJORS


class ShellTtyKind:
    field = "shell_tty"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        if not is_tty(t.st):
            return False
        if not ctx.opts.shell_job:
            raise UnsupportedObject(f"{describe(t)} is a terminal; dump with --shell-job if the "
                                    "process is a job of the shell you run refcr from")
        return True

    def dump(self, t: FdTarget, ctx: DumpFiles) -> files_pb2.ShellTtyEntry:
        return files_pb2.ShellTtyEntry(flags=t.flags, rdev=t.st.st_rdev)

    def open(self, e: files_pb2.ShellTtyEntry, ctx: RestoreFiles) -> int:
        if not ctx.opts.shell_job:
            raise RestoreError("the images hold a shell job (a process on a terminal): restore with --shell-job")
        if not os.isatty(0):
            raise RestoreError("--shell-job restore needs a terminal on standard input")
        return os.dup(0)


KINDS = [ShellTtyKind()]
