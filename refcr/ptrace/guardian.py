"""The guardian: what undoes a dump's traces in the tasks when refcr itself dies.

During a dump (and a pre-dump) refcr changes the frozen tasks: every thread's
signal mask is INJECT_MASK, the main thread has refcr's scratch mapping, and
during each injected syscall the task's registers and 4 bytes at the start
of its vdso are refcr's.  When refcr dies (SIGKILL, OOM killer, a crash of
the interpreter), the kernel detaches its tracees and they run on -- with
every signal blocked for ever and 64 KiB of refcr's memory in them.

Design.  Before the freeze refcr forks a guardian: a copy of itself that
only reads a pipe.  refcr tells it, before each change, how to undo it (the
pidfd and tids of each seized process, each thread's mask and registers at
the freeze, the original bytes under the patched code, the scratch address)
and, after each task is put back, that it was put back.  When refcr says
"done" the guardian exits without touching anything.  When refcr dies
instead (its pidfd becomes readable), the guardian seizes every task that
was not put back, and:

  - a thread whose instruction pointer is inside the patched code (it was
    running an injected call: the injector's "syscall; jmp ." finishes the
    call and spins, see native/core.c) gets the registers of the freeze;
  - the patched bytes are written back, the page pipes' fds closed
    (mm/taskio.py: only pipes at the numbers refcr named), the scratch
    area unmapped;
  - every thread gets its mask back (a thread created after refcr's death
    inherited INJECT_MASK: it gets its process's first mask);
  - it is detached: runs on, or stays stopped with --leave-stopped.

A cgroup the dump froze (--freeze-cgroup, kernel/freezer.py) is thawed
first.  Then the image directory says why it is incomplete.  After refcr's
"commit" (the images are complete, only the end of the dump remains) the
guardian finishes what the user asked for instead: the tree is killed
(default) or let go, and the directory is marked complete.

Why not CRIU's way.  CRIU's parasite is a daemon inside the task that
notices the closed control socket and rt_sigreturns itself (registers and
mask back) -- the parasite blob itself then stays mapped.  refcr injects
single syscalls and has no code living in the task, so the undo must come
from outside: a guardian is the smallest piece that outlives refcr.  The
scratch address is chosen by refcr (the middle of the largest hole in the
address space, MAP_FIXED_NOREPLACE) so the guardian knows it even when
refcr died during the mmap; unmapping it when it was never made is a no-op.

Costs.  One fork per dump (~2 ms) and one pipe write per process and per
thread; the injector's PTRACE_SYSCALL takes two stops per call where an
int3 took one.  Not covered: between refcr's death and the guardian's seize
(a few milliseconds) the tasks run with INJECT_MASK (a signal is then only
delayed); a child forked in that window keeps INJECT_MASK and a copy of
the scratch; a SIGKILL of the guardian as well as of refcr (e.g. of the
whole process group: the guardian ignores SIGINT/SIGTERM/SIGHUP/SIGQUIT but
cannot ignore SIGKILL) leaves the old behaviour.  What refcr changed outside
the tasks is told as notes and undone (the dump's `outside` callback) before
the tasks are put back: the network lock (net/netlock.py) and TCP repair mode
of the dumped connections (a task reading a socket in repair mode would see
an error); a
pre-dump's userfaultfd stays in the task (as after any pre-dump).
"""
from __future__ import annotations

import errno
import json
import os
import select
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from refcr.errors import RefcrError
from refcr.kernel.freezer import Freezer
from refcr.log import log
from refcr.ptrace import native, proc
from refcr.ptrace.tracee import INJECT_MASK, PATCH_SIZE, Remote, release, seize_thread

_IGNORED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE)


@dataclass
class _Process:
    """What the guardian knows about one seized process."""

    pid: int
    pidfd: int
    tids: list[int]
    masks: dict[int, int] = field(default_factory=dict)
    regs: dict[int, dict[str, int]] = field(default_factory=dict)
    code: tuple[int, bytes] | None = None          # address, original bytes
    scratch: tuple[int, int] | None = None         # address, size
    pipes: list[int] = field(default_factory=list)  # fds of mm/taskio.py's pipes in the task
    pipe_inodes: list[int] | None = None           # their inodes, once refcr knew them
    undone: bool = False


class Guardian:
    """refcr's side: the pipe to the guardian process (one per dump)."""

    def __init__(self, leave_stopped: bool, on_death: Callable[[bool], None],
                 outside: Callable[[bool | None, dict[str, object]], None] | None = None) -> None:
        """on_death(committed) runs in the guardian after it recovered the
        tasks; outside(commit, notes) before it puts them back (what refcr
        changed outside the tasks, e.g. sockets in repair mode the tasks would
        trip over): commit None (refcr died before the images were complete),
        True (after them, the tree is killed) or False (the tree is let go);
        notes what refcr told it with note()."""
        self.leave_stopped = leave_stopped
        self.on_death = on_death
        self.outside = outside
        self.pid = 0
        self._fd = -1

    def start(self) -> None:
        rfd, wfd = os.pipe2(os.O_CLOEXEC)
        parent = os.getpid()
        parent_fd = os.pidfd_open(parent)
        pid = os.fork()
        if pid == 0:                              # the guardian
            os.close(wfd)
            code = 1
            try:
                code = _Keeper(rfd, parent_fd, self.leave_stopped, self.on_death, self.outside).serve()
            finally:
                os._exit(code)
        os.close(rfd)
        os.close(parent_fd)
        self.pid, self._fd = pid, wfd

    def _send(self, kind: str, **fields: object) -> None:
        if self._fd < 0:
            return
        data = (json.dumps({"t": kind, **fields}, separators=(",", ":")) + "\n").encode()
        try:
            done = 0
            while done < len(data):
                done += os.write(self._fd, data[done:])
        except OSError as exc:
            raise RefcrError(f"refcr's guardian process is gone ({exc.strerror}): dump stopped") from None

    # -- what to undo --------------------------------------------------------
    def process(self, pid: int, tids: list[int]) -> None:
        self._send("process", pid=pid, tids=tids)

    def freezer(self, path: str, v2: bool) -> None:
        """The dump freezes this cgroup: thawed first if refcr dies (kernel/freezer.py)."""
        self._send("freezer", path=path, v2=v2)

    def thread(self, pid: int, tid: int, mask: int, regs: dict[str, int]) -> None:
        self._send("thread", pid=pid, tid=tid, mask=mask, regs=regs)

    def code(self, pid: int, addr: int, data: bytes) -> None:
        self._send("code", pid=pid, addr=addr, data=data.hex())

    def scratch(self, pid: int, addr: int, size: int) -> None:
        self._send("scratch", pid=pid, addr=addr, size=size)

    def pipes(self, pid: int, fds: list[int], inodes: list[int] | None) -> None:
        """The fds the page pipes get (before: inodes None), have, or [] once closed."""
        self._send("pipes", pid=pid, fds=fds, inodes=inodes)

    def undone(self, pid: int) -> None:
        self._send("undone", pid=pid)

    def commit(self, kill: bool) -> None:
        self._send("commit", kill=kill)

    def note(self, key: str, value: object) -> None:
        """Something outside the tasks for on_death to undo (e.g. the network lock)."""
        self._send("note", key=key, value=value)

    def done(self) -> None:
        """The dump is over (well or not): the guardian exits touching nothing."""
        if self._fd < 0:
            return
        try:
            self._send("done")
        finally:
            os.close(self._fd)
            self._fd = -1
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass


class _Keeper:
    """The guardian process: records, then undoes if refcr dies."""

    def __init__(self, rfd: int, parent_fd: int, leave_stopped: bool,
                 on_death: Callable[[bool], None],
                 outside: Callable[[bool | None, dict[str, object]], None] | None) -> None:
        self.rfd, self.parent_fd = rfd, parent_fd
        self.leave_stopped = leave_stopped
        self.on_death = on_death
        self.outside = outside
        self.procs: dict[int, _Process] = {}
        self.commit: bool | None = None          # None: no commit; else kill?
        self.notes: dict[str, object] = {}
        self.freezer: Freezer | None = None       # the cgroup the dump freezes
        self._buf = b""

    def serve(self) -> int:
        for sig in _IGNORED:
            signal.signal(sig, signal.SIG_IGN)
        os.environ.pop("REFCR_KILL_AT", None)    # the test's kill is refcr's, not ours
        with open("/proc/self/comm", "w") as comm:
            comm.write("refcr-guardian")
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.set_blocking(self.rfd, False)
        watch = [self.rfd, self.parent_fd]
        while True:
            ready, _, _ = select.select(watch, [], [])
            if self.rfd in ready:
                got = self._read()
                if got == "done":
                    return 0
                if got == "eof":                  # closed without "done": refcr is dying
                    watch = [self.parent_fd]
            if self.parent_fd in ready:           # refcr is dead
                if self._read() == "done":
                    return 0
                self.recover()
                return 0

    def _read(self) -> str | None:
        """Take what the pipe holds; 'done' if refcr said so, 'eof' at the end."""
        while True:
            try:
                chunk = os.read(self.rfd, 65536)
            except BlockingIOError:
                return None
            if not chunk:
                return "eof"
            self._buf += chunk
            *lines, self._buf = self._buf.split(b"\n")
            for line in lines:
                if self._take(json.loads(line)) == "done":
                    return "done"

    def _take(self, m: dict) -> str | None:
        kind = m["t"]
        if kind == "done":
            return "done"
        if kind == "process":
            try:
                pidfd = os.pidfd_open(m["pid"])
            except OSError:
                return None
            self.procs[m["pid"]] = _Process(m["pid"], pidfd, list(m["tids"]))
        elif kind == "commit":
            self.commit = bool(m["kill"])
        elif kind == "note":
            self.notes[m["key"]] = m["value"]
        elif kind == "freezer":
            self.freezer = Freezer(str(m["path"]), bool(m["v2"]))
        elif (p := self.procs.get(m["pid"])) is not None:
            if kind == "thread":
                p.masks[m["tid"]], p.regs[m["tid"]] = m["mask"], m["regs"]
            elif kind == "code":
                p.code = (m["addr"], bytes.fromhex(m["data"]))
            elif kind == "scratch":
                p.scratch = (m["addr"], m["size"])
            elif kind == "pipes":
                p.pipes, p.pipe_inodes = list(m["fds"]), m["inodes"]
            elif kind == "undone":
                p.undone = True
        return None

    # -- after refcr's death ---------------------------------------------------
    def recover(self) -> None:
        log.error("refcr died during the dump: its guardian puts %d process(es) back", len(self.procs))
        if self.freezer is not None:          # first: a frozen task takes no ptrace stop
            self.freezer.thaw_quietly()
        if self.outside is not None:
            try:
                self.outside(self.commit, self.notes)
            except Exception as exc:     # the tasks come first
                log.error("guardian: %s", exc)
        for p in self.procs.values():
            if not p.undone and _alive(p):
                try:
                    undo(p, self.leave_stopped)
                except Exception as exc:     # keep going: every task must be put back
                    log.error("guardian: process %d: %s", p.pid, exc)
        if self.commit:
            for p in self.procs.values():
                if _alive(p):
                    signal.pidfd_send_signal(p.pidfd, signal.SIGKILL)
        self.on_death(self.commit is not None)


def _alive(p: _Process) -> bool:
    return not select.select([p.pidfd], [], [], 0)[0]


def _seize_all(p: _Process) -> list[int]:
    """Seize every thread of p (threads may appear until all are stopped)."""
    seized: list[int] = []
    while True:
        new = [t for t in proc.threads(p.pid) if t not in seized]
        if not new:
            return seized
        for tid in new:
            try:
                seize_thread(tid)
            except RefcrError as exc:
                log.error("guardian: thread %d: %s", tid, exc)
                continue
            seized.append(tid)


def undo(p: _Process, leave_stopped: bool) -> None:
    tids = _seize_all(p)
    try:
        if p.code:
            addr, data = p.code
            for tid in tids:
                rip = native.get_regs(tid)["rip"]
                if addr <= rip < addr + PATCH_SIZE and tid in p.regs:
                    native.set_regs(tid, p.regs[tid])
            _poke(p.pid, addr, data)
            if (p.scratch or p.pipes) and tids:
                remote = Remote(tids[0], code_addr=addr, patch=True)
                try:
                    for fd in _our_pipes(p):
                        remote.call("close", fd)
                    if p.scratch:
                        remote.call("munmap", *p.scratch)
                finally:
                    remote.close()
        first = next(iter(p.masks.values()), None)
        for tid in tids:
            mask = p.masks.get(tid)
            if mask is None and first is not None and native.get_sigmask(tid) == INJECT_MASK:
                mask = first
            if mask is not None:
                native.set_sigmask(tid, mask)
    finally:
        if leave_stopped:     # pending until released: a group stop then, whatever stop each thread is in
            signal.pidfd_send_signal(p.pidfd, signal.SIGSTOP)
        for tid in tids:
            release(tid)


def _our_pipes(p: _Process) -> list[int]:
    """The page pipes' fds still in the task: pipes at the numbers refcr
    named, with the inodes it named when it had told them."""
    out = []
    for fd in p.pipes:
        try:
            link = os.readlink(proc.path(p.pid, "fd", str(fd)))
        except OSError:
            continue
        if link.startswith("pipe:[") and (p.pipe_inodes is None or int(link[6:-1]) in p.pipe_inodes):
            out.append(fd)
    return out


def _poke(pid: int, addr: int, data: bytes) -> None:
    fd = os.open(proc.path(pid, "mem"), os.O_RDWR | os.O_CLOEXEC)
    try:
        os.pwrite(fd, data, addr)
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
    finally:
        os.close(fd)
