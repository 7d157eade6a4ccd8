"""Running refcr's own code inside a tree's network namespace.

Sockets belong to the network namespace they were created in (abstract unix
names, ports, routes are all per namespace).  refcr creates the sockets of a
restored tree itself, so it briefly switches its (single) thread into the
tree's network namespace and back; setns(CLONE_NEWNET) has none of the
restrictions a mount-namespace switch has.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from refcr.errors import NoSuchProcess
from refcr.ptrace import native


@contextmanager
def entered(pid: int | None) -> Iterator[None]:
    """Inside: refcr's thread is in pid's network namespace (None: stay)."""
    with entered_file(None if pid is None else f"/proc/{pid}/ns/net"):
        yield


@contextmanager
def entered_file(path: str | None) -> Iterator[None]:
    """Inside: refcr's thread is in the network namespace of a namespace file
    (/proc/PID/ns/net, or /proc/self/fd/N of an open one; None: stay)."""
    if path is None or _link(path) == os.readlink("/proc/self/ns/net"):
        yield
        return
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        os.close(own)
        raise _gone(path) from None
    try:
        native.setns(target, native.CLONE_NEWNET)
        try:
            yield
        finally:
            native.setns(own, native.CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(target)


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except FileNotFoundError:
        raise _gone(path) from None


def _gone(path: str) -> NoSuchProcess:
    """The process of /proc/PID/ns/net died (a restored task that crashed at
    once, say): one line naming it, not an internal error."""
    pid = path.split("/")[2]
    return NoSuchProcess(int(pid) if pid.isdigit() else 0, "process whose network namespace refcr needs")
