"""The mount syscalls refcr uses, new mount API included (open_tree,
move_mount, fsopen/fsconfig/fsmount, mount_setattr), over libc's syscall().

Every call raises OSError naming what it did; strings go to the kernel as
arguments, never through a shell.
"""
from __future__ import annotations

import ctypes
import os

from refcr.fs.eventfd import syscall

NR_PIVOT_ROOT, NR_MOUNT, NR_UMOUNT2 = 155, 165, 166
NR_OPEN_TREE, NR_MOVE_MOUNT, NR_FSOPEN, NR_FSCONFIG, NR_FSMOUNT, NR_FSPICK, NR_MOUNT_SETATTR = \
    428, 429, 430, 431, 432, 433, 442

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, AT_RECURSIVE = 0x100, 0x1000, 0x8000
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH, MOVE_MOUNT_SET_GROUP = 0x4, 0x40, 0x100
FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE, FSCONFIG_CMD_RECONFIGURE = 0, 1, 6, 7
FSPICK_CLOEXEC, FSPICK_EMPTY_PATH = 1, 8

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REC, MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 14, 1 << 17, 1 << 18, 1 << 19, 1 << 20
MNT_DETACH = 2

# per-mount attributes (mount_setattr, fsmount)
ATTR_RDONLY, ATTR_NOSUID, ATTR_NODEV, ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8
ATTR_RELATIME, ATTR_NOATIME, ATTR_STRICTATIME, ATTR__ATIME = 0x0, 0x10, 0x20, 0x70
ATTR_NODIRATIME, ATTR_NOSYMFOLLOW = 0x80, 0x200000
ATTR_NAMES = {"ro": ATTR_RDONLY, "nosuid": ATTR_NOSUID, "nodev": ATTR_NODEV, "noexec": ATTR_NOEXEC,
              "noatime": ATTR_NOATIME, "nodiratime": ATTR_NODIRATIME, "nosymfollow": ATTR_NOSYMFOLLOW,
              "relatime": ATTR_RELATIME}


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _s(s: str | None) -> ctypes.c_char_p:
    return ctypes.c_char_p(None if s is None else os.fsencode(s))


def attrs_of(options: str) -> int:
    """The MOUNT_ATTR_* flags of a mountinfo per-mount option field."""
    words = options.split(",")
    flags = sum(ATTR_NAMES.get(w, 0) for w in set(words))
    if "noatime" not in words and "relatime" not in words:
        flags |= ATTR_STRICTATIME
    return flags


def open_tree(dirfd: int, path: str, recursive: bool = False) -> int:
    """A detached copy of the mount at dirfd/path (close-on-exec fd)."""
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    if not path:
        flags |= AT_EMPTY_PATH
    return syscall(f"open_tree({path!r})", NR_OPEN_TREE, dirfd, _s(path), flags)


def move_mount(fd: int, to_dirfd: int, to_path: str) -> None:
    """Attach the detached mount fd at to_dirfd/to_path."""
    flags = MOVE_MOUNT_F_EMPTY_PATH | (MOVE_MOUNT_T_EMPTY_PATH if not to_path else 0)
    syscall(f"move_mount(to {to_path!r})", NR_MOVE_MOUNT, fd, _s(""), to_dirfd, _s(to_path), flags)


def set_group(from_fd: int, to_fd: int) -> None:
    """Make the mount to_fd a member of from_fd's peer group (and of its master's slaves)."""
    flags = MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH
    syscall("move_mount(MOVE_MOUNT_SET_GROUP)", NR_MOVE_MOUNT, from_fd, _s(""), to_fd, _s(""), flags)


def new_fs(fstype: str, source: str, options: list[tuple[str, str | None]], attrs: int) -> int:
    """A detached mount of a new superblock of fstype with the given options."""
    fs = syscall(f"fsopen({fstype!r})", NR_FSOPEN, _s(fstype), 1)
    try:
        syscall(f"fsconfig({fstype}, source={source!r})", NR_FSCONFIG, fs, FSCONFIG_SET_STRING,
                _s("source"), _s(source), 0)
        for key, value in options:
            if value is None:
                syscall(f"fsconfig({fstype}, {key})", NR_FSCONFIG, fs, FSCONFIG_SET_FLAG, _s(key), None, 0)
            else:
                syscall(f"fsconfig({fstype}, {key}={value})", NR_FSCONFIG, fs, FSCONFIG_SET_STRING,
                        _s(key), _s(value), 0)
        syscall(f"fsconfig({fstype}, create)", NR_FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0)
        return syscall(f"fsmount({fstype})", NR_FSMOUNT, fs, 1, attrs)
    finally:
        os.close(fs)


def make_sb_readonly(fd: int) -> None:
    """Reconfigure the superblock of the mount fd read-only (fspick)."""
    fs = syscall("fspick", NR_FSPICK, fd, _s(""), FSPICK_CLOEXEC | FSPICK_EMPTY_PATH)
    try:
        syscall("fsconfig(ro)", NR_FSCONFIG, fs, FSCONFIG_SET_FLAG, _s("ro"), None, 0)
        syscall("fsconfig(reconfigure)", NR_FSCONFIG, fs, FSCONFIG_CMD_RECONFIGURE, None, None, 0)
    finally:
        os.close(fs)


def setattr_fd(fd: int, attrs: int | None = None, propagation: int = 0) -> None:
    """mount_setattr on the mount fd: the per-mount flags (all of them) and/or propagation."""
    a = MountAttr(propagation=propagation)
    if attrs is not None:
        a.attr_set = attrs
        a.attr_clr = ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC | ATTR__ATIME | ATTR_NODIRATIME \
            | ATTR_NOSYMFOLLOW
    syscall("mount_setattr", NR_MOUNT_SETATTR, fd, _s(""), AT_EMPTY_PATH, ctypes.byref(a), ctypes.sizeof(a))


def mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    syscall(f"mount({target!r})", NR_MOUNT, _s(source), _s(target), _s(fstype), flags, None)


def umount(target: str) -> None:
    syscall(f"umount2({target!r})", NR_UMOUNT2, _s(target), MNT_DETACH)


def pivot_root(new_root: str, put_old: str) -> None:
    syscall("pivot_root", NR_PIVOT_ROOT, _s(new_root), _s(put_old))
