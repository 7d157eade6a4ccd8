"""A process's place in the file system: working directory, root, umask."""
from __future__ import annotations

from refcr.errors import RestoreError, UnsupportedObject
from refcr.pb import core_pb2
from refcr.ptrace import proc
from refcr.ptrace.tracee import Remote, RemoteError


def dump(pid: int, core: core_pb2.CoreEntry) -> None:
    core.cwd = proc.readlink(pid, "cwd")
    core.root = proc.readlink(pid, "root")
    for what in (core.cwd, core.root):
        if what.endswith(" (deleted)"):
            raise UnsupportedObject(f"process {pid}: its directory {what!r} was deleted")
    core.umask = int(proc.status(pid)["Umask"], 8)


def restore(remote: Remote, core: core_pb2.CoreEntry) -> None:
    try:
        remote.check("chdir", remote.put_str(core.cwd))
        if core.root != "/":
            remote.check("chroot", remote.put_str(core.root))
    except RemoteError as exc:
        raise RestoreError(f"cannot restore working directory {core.cwd!r} / root {core.root!r}: "
                           f"{exc}") from exc
    remote.check("umask", core.umask)
