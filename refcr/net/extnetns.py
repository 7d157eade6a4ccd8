"""An external network namespace: `--external net[INO]` at dump, `--inherit-fd fd[N]:net:[INO]` at restore.

A tree with a network namespace of its own normally has it dumped and gets a
new one on restore.  When something outside the tree lives in that namespace
too (a peer on the same loopback, a container runtime that owns the
namespace), `refcr dump --external net[INO]` (INO: the namespace's inode, as
/proc/PID/ns/net shows it) leaves the namespace out: its links, addresses and
routes are not dumped and nothing is locked, while the tree's sockets in it
are dumped as usual.  `refcr restore --inherit-fd fd[N]:net:[INO]` then puts
the restored tree into the namespace open on the caller's fd N (the same one,
or another), instead of creating one.
"""
from __future__ import annotations

import os
from contextlib import AbstractContextManager

from refcr.errors import OptionError, RestoreError, UnsupportedObject
from refcr.fs.fd import RestoreFiles
from refcr.net import nsenter
from refcr.options import Options


def resource(ino: int) -> str:
    return f"net:[{ino}]"


def dump_side(opts: Options, pid: int, namespaces: list[str]) -> tuple[list[str], int]:
    """The root's namespaces to dump and the external netns inode (0: none).
    Every --external net[...] must name the root's own net namespace."""
    wanted = [e for e in opts.external if e.startswith("net[")]
    if not wanted:
        return namespaces, 0
    own = os.stat(f"/proc/{pid}/ns/net").st_ino
    if "user" in namespaces:
        raise UnsupportedObject(f"--external {wanted[0]}: the tree has a user namespace of its own, which the "
                                "restore makes anew; the external net namespace would stay owned by the old one")
    for opt in wanted:
        ident = opt[4:-1] if opt.endswith("]") else ""
        if not ident.isdigit():
            raise OptionError(f"--external {opt}: expected net[INO] (the inode of /proc/PID/ns/net)")
        if "net" not in namespaces or int(ident) != own:
            raise OptionError(f"--external {opt}: matches nothing (the tree's own net namespace is "
                              f"{'net:[%d]' % own if 'net' in namespaces else 'the caller''s'})")
    return [n for n in namespaces if n != "net"], own


def inherited_fd(ino: int, ctx: RestoreFiles) -> int | None:
    """The caller's fd for the images' external net namespace (None if the images have none)."""
    if not ino:
        return None
    fd = ctx.inherited.take(resource(ino))
    if fd is None:
        raise RestoreError(f"the tree's net namespace net:[{ino}] was left out of the images (--external "
                           f"net[{ino}]): give --inherit-fd fd[N]:net:[{ino}] with N open on the one to use")
    try:
        if os.readlink(f"/proc/self/fd/{fd}").split(":", 1)[0] != "net":
            raise RestoreError(f"--inherit-fd for net:[{ino}]: the fd is not a network namespace")
    except BaseException:
        os.close(fd)
        raise
    ctx.keep(fd)
    return fd


def entered(fd: int | None) -> AbstractContextManager[None]:
    """refcr's thread in the namespace open on fd while a child is created in it."""
    return nsenter.entered_file(None if fd is None else f"/proc/self/fd/{fd}")
