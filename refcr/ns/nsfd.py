"""Descriptors of namespaces (nsfs files: an open /proc/PID/ns/KIND).

A process that holds an fd of a namespace it lives in (setns targets kept
for later, `ip netns`-style handles) gets an fd of the same namespace back:
the restored tree's own namespace when the tree has one of that kind (made
anew by the restore), else the one refcr and the tree share.  The restore
opens /proc/ROOT/ns/KIND of the restored root, which lives in the tree's
namespaces by the time files are opened.  A namespace the holder does not
live in (another container's, a child namespace, a namespace only kept
alive by the fd) cannot be made again: the dump refuses it by name.
"""
from __future__ import annotations

import os
import re

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.pb import files_pb2

NS_LINK = re.compile(r"^(net|mnt|uts|ipc|pid|cgroup|time|user):\[(\d+)\]$")
# The kind in the link -> the /proc/PID/ns entries that may show that namespace.
NS_ENTRIES = {"net": ("net",), "mnt": ("mnt",), "uts": ("uts",), "ipc": ("ipc",),
              "pid": ("pid", "pid_for_children"), "cgroup": ("cgroup",),
              "time": ("time", "time_for_children"), "user": ("user",)}
STATUS_FLAGS = os.O_ACCMODE


class NsFileKind:
    field = "nsfile"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return NS_LINK.match(t.link) is not None

    def dump(self, t: FdTarget, ctx: DumpFiles) -> files_pb2.NsFileEntry:
        m = NS_LINK.match(t.link)
        assert m is not None
        kind, ino = m.group(1), int(m.group(2))
        for entry in NS_ENTRIES[kind]:
            try:
                if os.stat(f"/proc/{t.pid}/ns/{entry}").st_ino == ino:
                    return files_pb2.NsFileEntry(kind=kind, flags=t.flags)
            except OSError:
                continue
        raise UnsupportedObject(f"{describe(t)}: a {kind} namespace the process does not live in "
                                f"cannot be dumped")

    def open(self, e: files_pb2.NsFileEntry, ctx: RestoreFiles) -> int:
        if e.kind not in NS_ENTRIES:
            raise RestoreError(f"the images hold a namespace fd of an unknown kind {e.kind!r}")
        root = ctx.root_pid if ctx.root_pid is not None else os.getpid()
        try:
            return os.open(f"/proc/{root}/ns/{e.kind}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise RestoreError(f"cannot open the tree's {e.kind} namespace: {exc.strerror}") from None


KINDS = [NsFileKind()]
