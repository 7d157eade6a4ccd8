"""The device nodes of the host's /dev: the rule for remaking a removed one.

A removed device node that a process still holds (fs/regfile.py's ghosts)
is made again with mknod of its device number.  Images are untrusted and
refcr runs as root, so mknod must not become a way to reach a device the
host does not offer: a node (character or block) is remade only if a node
of the same type and number exists under /dev of refcr's mount namespace.
The restored process then gets nothing an image could not give it anyway
by naming that /dev path in an fd reopened by path.  The dump checks the
same rule, so that it refuses by name instead of writing images that
cannot be restored here.

It is a rule about what an image may ask of the host, so it lives with the
validation layer (validate.py applies it to a whole image set before
anything is created); fs/regfile.py applies it at dump and once more just
before its mknod.  It imports nothing of refcr.

Cost: one walk of /dev (lstat of every entry, symlinks not followed, a
few hundred entries on a usual host) per process that meets a removed
device node, then a set lookup per node.
"""
from __future__ import annotations

import functools
import os
import stat as stat_mod

DEV = "/dev"
MAX_DEPTH = 8                       # /dev/disk/by-id/... is 3 deep; a deeper tree is not walked further


def kind_name(mode: int) -> str:
    return "block" if stat_mod.S_ISBLK(mode) else "character"


def number(rdev: int) -> str:
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def nodes(root: str | None = None) -> dict[tuple[int, int], str]:
    """(S_IFCHR or S_IFBLK, rdev) -> the first path under *root* (default
    DEV, looked up at the call: tests point it elsewhere) with it."""
    return _nodes(root or DEV)


@functools.lru_cache(maxsize=4)     # one walk per run: a node made in /dev meanwhile counts from the next run
def _nodes(root: str) -> dict[tuple[int, int], str]:
    found: dict[tuple[int, int], str] = {}
    _walk(root, found, 0)
    return found


def _walk(where: str, found: dict[tuple[int, int], str], depth: int) -> None:
    try:
        entries = list(os.scandir(where))
    except OSError:                 # unreadable or gone meanwhile: it has no nodes to offer
        return
    for entry in sorted(entries, key=lambda x: x.name):
        try:
            st = entry.stat(follow_symlinks=False)     # a symlink is not a node of /dev
        except OSError:
            continue
        if stat_mod.S_ISDIR(st.st_mode) and depth < MAX_DEPTH:
            _walk(entry.path, found, depth + 1)
        elif stat_mod.S_ISCHR(st.st_mode) or stat_mod.S_ISBLK(st.st_mode):
            found.setdefault((stat_mod.S_IFMT(st.st_mode), st.st_rdev), entry.path)


def host_node(mode: int, rdev: int, root: str | None = None) -> str | None:
    """The /dev path of a node of mode's type with device number rdev, or None."""
    return nodes(root).get((stat_mod.S_IFMT(mode), rdev))


def refusal(mode: int, rdev: int, root: str | None = None) -> str | None:
    """Why a removed node of this type and number may not be made again
    here (one line naming the device), or None if it may."""
    if not (stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode)):
        return f"mode {mode:#o} is no device node"
    if host_node(mode, rdev, root) is not None:
        return None
    kind, num, where = kind_name(mode), number(rdev), root or DEV
    return (f"removed {kind} device {num}: no {kind} node {num} in {where} of this host (refcr makes a "
            f"removed device node again only for a device {where} offers)")
