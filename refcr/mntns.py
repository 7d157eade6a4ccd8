"""The mount namespace of a tree that has its own (so far, only its /proc).

Restoring the mount tree itself is not done yet: the tree gets a private
copy of refcr's mount namespace, /proc is mounted anew there (so that it
shows the tree's pid namespace) with the dumped flags, and every file the
restore opens is opened through /proc/ROOT/root so that it belongs to the
tree's namespace and not to refcr's.
"""
from __future__ import annotations

import os

from refcr import proc
from refcr.errors import RestoreError
from refcr.pb import mntns_pb2
from refcr.tracee import Remote

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
MS_REC, MS_PRIVATE = 1 << 14, 1 << 18
MNT_DETACH = 2
FLAG_NAMES = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
              "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}


def dump(pid: int) -> mntns_pb2.MntNsEntry:
    e = mntns_pb2.MntNsEntry()
    with open(proc.path(pid, "mountinfo")) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[4] == "/proc" and fields[sep + 1] == "proc":
                e.proc_mounted = True
                e.proc_flags = sum(FLAG_NAMES.get(o, 0) for o in fields[5].split(","))
    return e


def restore(remote: Remote, e: mntns_pb2.MntNsEntry) -> None:
    """In the root puppet (already in its new mount and pid namespaces)."""
    remote.check("mount", 0, remote.put_str("/"), 0, MS_REC | MS_PRIVATE, 0)
    if not e.proc_mounted:
        return
    proc_dir, proc_fs = remote.put(b"/proc\0", b"proc\0")
    remote.call("umount2", proc_dir, MNT_DETACH)
    ret = remote.call("mount", proc_fs, proc_dir, proc_fs, e.proc_flags, 0)
    if ret < 0:
        raise RestoreError(f"cannot mount /proc in the new mount namespace: {os.strerror(-ret)}")


def resolver(root_pid: int | None):
    """A function mapping a dumped absolute path to the path refcr opens."""
    prefix = f"/proc/{root_pid}/root" if root_pid else ""

    def resolve(path: str) -> str:
        norm = os.path.normpath(path)
        if not norm.startswith("/") or norm.startswith("//"):
            raise RestoreError(f"image path {path!r} is not absolute")
        return prefix + norm
    return resolve
