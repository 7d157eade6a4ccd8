"""Start a scenario as pid 1 of fresh namespaces (the ``ns`` and ``uns`` flavors).

Run by the harness as a script (standard library only, so it never depends on
the engine being importable):

    python nslaunch.py [--userns] -- /path/to/scenario --pidfile=... --outfile=...

This process (the intermediate) optionally gets a user namespace mapping root
(``--userns``: a helper fork enters it, this process, still in the initial user
namespace, writes the helper's uid/gid maps, USERNS_MAP), unshares the PID, mount,
net, IPC and UTS namespaces and forks once more.  The grandchild is pid 1 of
the new PID namespace: it makes its whole mount tree private (nothing it mounts
reaches the host), detaches the host's /proc (not possible in a user
namespace: the mount is locked there) and mounts a fresh one for its PID
namespace, brings ``lo`` up, resets the signal dispositions Python changed,
and execs the scenario with fd 1 pointing at fd 2 (the harness's start.log).

The intermediate prints the grandchild's pid as seen by the harness (the OUTER
pid) on stdout and exits 0; the grandchild is then reparented to the harness,
a child subreaper.  Any failure is one line on stderr and exit status 1.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NS_FLAGS = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS

MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_REC, MS_PRIVATE = 0x4000, 0x40000
MNT_DETACH = 0x2
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
# The uns flavor's map of uids and of gids: root in the namespace is root
# outside (the work dirs and the host files stay reachable), every other id
# N is 100000 + N - 1 outside, so a credential or file owner restored with the
# wrong view (host ids inside, or the inverse) shows.
USERNS_MAP = "0 0 1\n1 100000 65535\n"

_libc = ctypes.CDLL(None, use_errno=True)


class LaunchError(Exception):
    pass


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise LaunchError(f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    def b(s: str | None) -> bytes | None:
        return None if s is None else s.encode()

    _check(_libc.mount(b(source), b(target), b(fstype), ctypes.c_ulong(flags), None),
           f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x})")


def umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(MNT_DETACH)), f"umount2({target!r}, MNT_DETACH)")


def lo_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def enter_userns() -> None:
    """Fork a helper into a new user namespace and map it from out here.

    Only a process in the parent user namespace may map every id, so the map is
    written by this process for the child; the child then carries on as the
    launcher and this process just passes its exit status on.
    """
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_child_w)
        os.close(to_parent_r)
        unshare(CLONE_NEWUSER)
        os.write(to_parent_w, b"u")
        os.close(to_parent_w)
        if os.read(to_child_r, 1) != b"m":
            raise LaunchError("the parent could not write the uid/gid maps")
        os.close(to_child_r)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        return
    os.close(to_child_r)
    os.close(to_parent_w)
    ok = os.read(to_parent_r, 1) == b"u"
    if ok:
        try:
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(USERNS_MAP)
            os.write(to_child_w, b"m")
        except OSError as e:
            print(f"nslaunch: writing /proc/{pid}/uid_map: {e}", file=sys.stderr)
    os.close(to_child_w)
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


# The source name of the tmpfs mounts other tests make for a moment (tests/):
# copied into this namespace they would be part of the scenario's mount tree,
# and gone from the host by the time it is restored.
TEST_MOUNT_SOURCE = "refcr-test"


def drop_test_mounts() -> None:
    """Unmount the copies of other tests' passing mounts (TEST_MOUNT_SOURCE)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f
                  if line.partition(" - ")[2].split()[1:2] == [TEST_MOUNT_SOURCE]]
    for point in reversed(points):
        try:
            umount(point.replace("\\040", " "))
        except LaunchError:
            pass


def become_init(argv: list[str]) -> None:
    """In pid 1 of the new namespaces: private mounts, own /proc, lo up, exec."""
    try:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        try:
            umount("/proc")  # the host's, with whatever is mounted under it
        except LaunchError:
            pass  # locked in a user namespace: the new /proc goes on top
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        drop_test_mounts()
        lo_up()
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        os.dup2(2, 1)
        os.execv(argv[0], argv)
    except (OSError, LaunchError) as e:
        print(f"nslaunch: pid 1: {e}", file=sys.stderr)
    os._exit(127)


def main(args: list[str]) -> int:
    userns = False
    while args and args[0] != "--":
        if args[0] == "--userns":
            userns = True
        else:
            print(f"nslaunch: unknown option {args[0]!r}", file=sys.stderr)
            return 2
        args = args[1:]
    argv = args[1:]
    if not argv:
        print("nslaunch: no command after --", file=sys.stderr)
        return 2
    try:
        if userns:
            # Other tests' passing mounts are dropped here, in a mount namespace of
            # the initial user namespace: in the new one they would be locked.
            unshare(CLONE_NEWNS)
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            drop_test_mounts()
            enter_userns()
        unshare(NS_FLAGS)
    except (OSError, LaunchError) as e:
        print(f"nslaunch: {e}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        become_init(argv)
    print(pid, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
