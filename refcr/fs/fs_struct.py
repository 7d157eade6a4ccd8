"""A process's place in the file system: working directory, root, umask.

A working directory that was removed (rmdir while a process is in it) is a
ghost directory of files.img (fs/regfile.py: the inode the fds of that
directory share; deleted files in it are made inside it before it is
removed again), and the restored process fchdirs into it, so its cwd shows
"PATH (deleted)" as before.  A removed root directory is refused.
"""
from __future__ import annotations

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs import regfile
from refcr.fs.fd import DumpFiles
from refcr.pb import core_pb2
from refcr.ptrace import proc
from refcr.ptrace.tracee import Remote, RemoteError

DELETED = " (deleted)"


def dump(pid: int, core: core_pb2.CoreEntry, files: DumpFiles) -> None:
    core.cwd = proc.readlink(pid, "cwd")
    core.root = proc.readlink(pid, "root")
    if core.root.endswith(DELETED):
        raise UnsupportedObject(f"process {pid}: its root directory {core.root!r} was deleted")
    if core.cwd.endswith(DELETED):
        core.cwd_file = regfile.dump_cwd(pid, files)
        core.cwd = core.cwd[:-len(DELETED)]
    core.umask = int(proc.status(pid)["Umask"], 8)


def restore(remote: Remote, core: core_pb2.CoreEntry, cwd_fd: int = -1) -> None:
    """cwd_fd: the puppet's fd of its removed working directory (core.cwd_file)."""
    try:
        if core.cwd_file:
            remote.check("fchdir", cwd_fd)
        else:
            remote.check("chdir", remote.put_str(core.cwd))
        if core.root != "/":
            remote.check("chroot", remote.put_str(core.root))
    except RemoteError as exc:
        raise RestoreError(f"cannot restore working directory {core.cwd!r} / root {core.root!r}: "
                           f"{exc}") from exc
    remote.check("umask", core.umask)
