"""Processes: become a subreaper, look at /proc, wait, reap and kill.

The harness process is a child subreaper, so a daemonized scenario and a
restored tree (whose restorer exits) are reparented to it: their exit status
can be collected with waitpid and no zombie is left behind.  Only specific pids
are waited for, never -1, so subprocess's own children are not stolen.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat the harness needs."""

    pid: int
    comm: str
    state: str
    ppid: int
    pgid: int
    sid: int
    fields: tuple[str, ...]  # every field after "(comm)", field 3 first

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")

    def field(self, n: int) -> str:
        """Field number n as proc(5) counts them (1 = pid, 3 = state)."""
        return self.fields[n - 3]


def read_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    lpar, rpar = raw.index("("), raw.rindex(")")
    rest = tuple(raw[rpar + 2:].split())
    return ProcStat(
        pid=int(raw[:lpar]), comm=raw[lpar + 1:rpar], state=rest[0],
        ppid=int(rest[1]), pgid=int(rest[2]), sid=int(rest[3]), fields=rest,
    )


def iter_procs() -> Iterator[ProcStat]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = read_stat(int(entry))
            if st is not None:
                yield st


def is_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    st = read_stat(pid)
    return st is not None and not st.zombie


def session_members(sid: int) -> list[ProcStat]:
    return [p for p in iter_procs() if p.sid == sid]


@dataclass(frozen=True)
class ExitStatus:
    """How a waited-for process ended; status None if it was not our child."""

    pid: int
    status: int | None

    def describe(self) -> str:
        s = self.status
        if s is None:
            return "exited (status unknown: not a child of the harness)"
        if os.WIFEXITED(s):
            return f"exited with status {os.WEXITSTATUS(s)}"
        if os.WIFSIGNALED(s):
            sig = os.WTERMSIG(s)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = "?"
            return f"killed by signal {sig} ({name})"
        return f"ended with wait status {s:#x}"

    @property
    def success(self) -> bool:
        return self.status is not None and os.WIFEXITED(self.status) and os.WEXITSTATUS(self.status) == 0


def wait_exit(pid: int, timeout: float) -> ExitStatus:
    """Wait for pid to end. Raises TimeoutError if it is still alive after timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            r, status = os.waitpid(pid, os.WNOHANG)
            if r == pid:
                return ExitStatus(pid, status)
        except ChildProcessError:
            # Not ours (or already reaped): all we can do is watch /proc.
            if not is_alive(pid):
                return ExitStatus(pid, None)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"process {pid} still alive after {timeout:g}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def reap_zombie_children() -> list[ExitStatus]:
    """Reap every zombie whose parent is this process."""
    me = os.getpid()
    reaped = []
    for p in iter_procs():
        if p.ppid == me and p.zombie:
            try:
                r, status = os.waitpid(p.pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if r == p.pid:
                reaped.append(ExitStatus(p.pid, status))
    return reaped


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    """Reap our zombies until none of pids exists; returns those still there."""
    deadline = time.monotonic() + timeout
    while True:
        reap_zombie_children()
        left = {pid for pid in pids if read_stat(pid) is not None}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.01)


def tree_of(root: int, sid: int | None = None) -> set[int]:
    """root, every process of session sid (if given), and all their descendants."""
    procs = list(iter_procs())
    pids = {p.pid for p in procs if p.pid == root or (sid is not None and p.sid == sid)}
    changed = True
    while changed:
        changed = False
        for p in procs:
            if p.ppid in pids and p.pid not in pids:
                pids.add(p.pid)
                changed = True
    return pids


def _children_file(pid: int) -> list[int] | None:
    """Children of pid from /proc/PID/task/*/children, None if the kernel has no
    such file (CONFIG_PROC_CHILDREN is off)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return []
    kids: set[int] = set()
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.update(int(c) for c in f.read().split())
        except ProcessLookupError:
            continue            # the thread exited between the listing and the read (ESRCH)
        except FileNotFoundError:
            if os.path.exists(f"/proc/{pid}/task/{tid}"):
                return None
    return sorted(kids)


def descendants(root: int) -> list[tuple[int, int]]:
    """(pid, parent) for a live root (parent 0) and every descendant, zombies
    included (a tree's zombies are part of its state), parents first.

    Walks /proc/PID/task/*/children where the kernel has it, else the ppid of
    every process from one scan of /proc.
    """
    if not is_alive(root):
        return []
    scan: dict[int, list[int]] | None = None
    out = [(root, 0)]
    i = 0
    while i < len(out):
        pid = out[i][0]
        kids = _children_file(pid) if scan is None else None
        if kids is None:
            if scan is None:
                scan = {}
                for p in iter_procs():
                    scan.setdefault(p.ppid, []).append(p.pid)
            kids = sorted(scan.get(pid, []))
        out += [(c, pid) for c in kids if read_stat(c) is not None]
        i += 1
    return out


def ns_ids(pid: int, key: str = "NSpid") -> list[int]:
    """The NSpid (or NStgid, NSpgid, NSsid) field of /proc/PID/status: the id in
    every PID namespace from the reader's down to the process's own (last)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == key:
                return [int(x) for x in v.split()]
    raise ValueError(f"/proc/{pid}/status has no {key}")


def inner_pid(pid: int) -> int:
    """pid as the process sees itself (in its own PID namespace)."""
    return ns_ids(pid)[-1]


def own_session(pid: int) -> int | None:
    """pid if it leads a session other than the harness's, else None."""
    st = read_stat(pid)
    if st is not None and st.sid == pid and pid != os.getsid(0):
        return pid
    return None


def kill_tree(root: int, sid: int | None = None, timeout: float = 10.0) -> set[int]:
    """SIGKILL root, session sid and their descendants, reap what is ours.

    Returns the pids that could not be made to disappear.
    """
    me = os.getpid()
    if sid is not None and sid == os.getsid(0):
        sid = None  # never our own session
    victims: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        current = tree_of(root, sid) - {me}
        victims |= current
        for pid in current:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        left = wait_gone(victims, 0.2)
        if not left and not (tree_of(root, sid) - {me}):
            return set()
        if time.monotonic() >= deadline:
            return left
