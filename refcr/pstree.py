"""The process tree: which processes a dump takes, and their ids.

So far a dump takes one single-threaded process; its session and process
group must be its own unless --shell-job says they belong to the caller's
shell.
"""
from __future__ import annotations

import os

from refcr import proc
from refcr.errors import NoSuchProcess, OptionError, UnsupportedObject
from refcr.options import Options
from refcr.pb import pstree_pb2


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        pid = proc.stat(pid).ppid
    return seen


def check_target(pid: int) -> proc.Stat:
    if pid <= 0:
        raise OptionError(f"invalid pid {pid}")
    if not proc.exists(pid):
        raise NoSuchProcess(pid)
    st = proc.stat(pid)
    if st.flags & proc.PF_KTHREAD:
        raise UnsupportedObject(f"process {pid} ({st.comm}) is a kernel thread")
    if pid in _ancestors(os.getpid()):
        raise OptionError(f"process {pid} is refcr itself or one of its ancestors")
    if st.state in ("Z", "X"):
        raise UnsupportedObject(f"process {pid} is a zombie")
    return st


def collect(pid: int, opts: Options) -> list[pstree_pb2.PstreeEntry]:
    st = check_target(pid)
    kids = proc.children(pid)
    if kids:
        raise UnsupportedObject(f"process {pid} has children ({', '.join(map(str, kids))}); "
                                "dumping process trees is not supported yet")
    threads = proc.threads(pid)
    if len(threads) > 1:
        raise UnsupportedObject(f"process {pid} has {len(threads)} threads; "
                                "dumping multi-threaded processes is not supported yet")
    if not opts.shell_job and (st.sid != pid or st.pgid != pid):
        raise UnsupportedObject(
            f"process {pid} is in session {st.sid} / process group {st.pgid} led by a process "
            "outside the dump; use --shell-job if it is a job of your shell")
    return [pstree_pb2.PstreeEntry(pid=pid, ppid=0, pgid=st.pgid, sid=st.sid, threads=threads)]
