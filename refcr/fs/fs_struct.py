"""A process's place in the file system: working directory, root, umask.

A working directory that was removed (rmdir while a process is in it) is a
ghost directory of files.img (fs/regfile.py: the inode the fds of that
directory share; deleted files in it are made inside it before it is
removed again), and the restored process fchdirs into it, so its cwd shows
"PATH (deleted)" as before.  A removed root directory (chroot into a
directory that was then removed) is such a ghost too, and the process
chroots into it through an fd of it (fchdir, chroot("."), then its cwd
by an fd: a path would now resolve inside the new root).  The ghost is
the same inode as the process's fds of the directory and a cwd in it.
"""
from __future__ import annotations

from refcr.errors import RestoreError
from refcr.fs import regfile
from refcr.fs.fd import DumpFiles, RestoreFiles
from refcr.pb import core_pb2
from refcr.ptrace import proc
from refcr.ptrace.tracee import Remote, RemoteError

DELETED = " (deleted)"


def dump(pid: int, core: core_pb2.CoreEntry, files: DumpFiles) -> None:
    core.cwd = proc.readlink(pid, "cwd")
    core.root = proc.readlink(pid, "root")
    if core.root.endswith(DELETED):
        core.root_file = regfile.dump_removed_dir(pid, "root", files)
        core.root = core.root[:-len(DELETED)]
    if core.cwd.endswith(DELETED):
        core.cwd_file = regfile.dump_removed_dir(pid, "cwd", files)
        core.cwd = core.cwd[:-len(DELETED)]
    core.umask = int(proc.status(pid)["Umask"], 8)


def restore(remote: Remote, core: core_pb2.CoreEntry, cwd_fd: int = -1, root_fd: int = -1) -> None:
    """cwd_fd: the puppet's fd of its working directory (the ghost of a
    removed one, core.cwd_file; any one when the root is removed), root_fd:
    of its removed root's ghost (core.root_file)."""
    try:
        if root_fd >= 0:
            remote.check("fchdir", root_fd)
            remote.check("chroot", remote.put_str("."))
        if cwd_fd >= 0:
            remote.check("fchdir", cwd_fd)
        else:
            remote.check("chdir", remote.put_str(core.cwd))
        if root_fd < 0 and core.root != "/":
            remote.check("chroot", remote.put_str(core.root))
    except RemoteError as exc:
        raise RestoreError(f"cannot restore working directory {core.cwd!r} / root {core.root!r}: "
                           f"{exc}") from exc
    remote.check("umask", core.umask)


def restore_task(p, core: core_pb2.CoreEntry, ctx: RestoreFiles) -> None:
    """cwd, root and umask; a removed cwd or root is a ghost directory the
    puppet gets an fd of (with a removed root, the cwd is reached by an fd
    too: after the chroot a path would resolve inside the new root)."""
    root = p.install_fd(ctx.open(core.root_file)) if core.root_file else -1
    if core.cwd_file:
        cwd = p.install_fd(ctx.open(core.cwd_file))
    elif core.root_file:
        cwd = p.install_fd(ctx.keep(_lookup_dir(ctx, core.cwd)))
    else:
        cwd = -1
    restore(p.remote, core, cwd, root)
    for fd in {cwd, root} - {-1}:
        p.remote.check("close", fd)


def _lookup_dir(ctx: RestoreFiles, path: str) -> int:
    try:
        return ctx.root.lookup(path)
    except OSError as exc:
        raise RestoreError(f"cannot find the working directory {path!r}: {exc.strerror}") from exc
