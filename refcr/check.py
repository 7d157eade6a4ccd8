"""``refcr check``: does this kernel give refcr everything it needs?

Each probe does the real thing on a throwaway child (seize it, inject a
syscall into it, read its pagemap, ...) rather than trusting version numbers
or config files. One line per feature: ``name: works`` or
``name: missing (reason)``. The exit code is 0 when every required feature
works; optional ones (soft-dirty) are reported but do not fail the check.
"""
from __future__ import annotations

import errno
import mmap
import os
import signal
import socket
import struct
import time
from typing import Callable

from refcr.ptrace import native

NR_MMAP, NR_MUNMAP, NR_GETPID, NR_PRCTL = 9, 11, 39, 157
PR_SET_MM, PR_SET_MM_MAP_SIZE = 35, 15
TCP_REPAIR = 19
PM_SOFT_DIRTY = 1 << 55


class ProbeChild:
    """A forked child that stopped itself, then seized and interrupted by us.

    Created on first use; if that fails, every probe needing it reports the
    failure as its reason."""

    def __init__(self) -> None:
        self.pid = 0
        self.error: OSError | None = None
        self._scratch = 0

    def get(self) -> int:
        if self.error:
            raise self.error
        if not self.pid:
            try:
                self._start()
            except OSError as e:
                self.error = e
                raise
        return self.pid

    def _start(self) -> None:
        pid = os.fork()
        if pid == 0:
            try:
                os.kill(os.getpid(), signal.SIGSTOP)
                while True:
                    time.sleep(1)
            finally:
                os._exit(1)
        self.pid = pid
        os.waitpid(pid, os.WUNTRACED)
        native.seize(pid)
        native.interrupt(pid)
        while True:
            st = native.wait(pid)
            if os.WIFSTOPPED(st) and st >> 16 == native.PTRACE_EVENT_STOP:
                return
            if not os.WIFSTOPPED(st):
                raise OSError(errno.ESRCH, "probe child exited")
            native.cont(pid, 0)

    def code_addr(self) -> int:
        """An executable address in the child for syscall injection."""
        with open(f"/proc/{self.get()}/maps") as f:
            for line in f:
                if line.split()[1] == "r-xp":
                    return int(line.split("-")[0], 16)
        raise OSError(errno.ENOENT, "no executable mapping in the probe child")

    def inject(self, nr: int, *args: int) -> int:
        return native.inject_syscall(self.get(), nr, args, addr=self.code_addr())

    def scratch(self) -> int:
        """A read-write anonymous page mapped into the child by injection."""
        if not self._scratch:
            addr = self.inject(NR_MMAP, 0, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_WRITE,
                               mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
            if addr < 0:
                raise OSError(-addr, os.strerror(-addr), "injected mmap")
            self._scratch = addr
        return self._scratch

    def close(self) -> None:
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            self.pid = 0


# Each probe returns None when the feature works, or the reason it does not
# (raising OSError is the same as returning its text).
Probe = Callable[[ProbeChild], "str | None"]


def probe_seize(c: ProbeChild) -> str | None:
    c.get()  # fork, seize, interrupt, see PTRACE_EVENT_STOP
    return None


def probe_regs(c: ProbeChild) -> str | None:
    regs = native.get_regs(c.get())
    native.set_regs(c.pid, regs)
    return None if native.get_regs(c.pid) == regs else "registers changed on a set/get round trip"


def probe_xstate(c: ProbeChild) -> str | None:
    xs = native.get_xstate(c.get())
    native.set_xstate(c.pid, xs)
    return None if len(xs) >= 576 else f"only {len(xs)} bytes of xstate"


def probe_sigmask(c: ProbeChild) -> str | None:
    mask = native.get_sigmask(c.get())
    native.set_sigmask(c.pid, mask | 1 << (signal.SIGUSR1 - 1))
    ok = native.get_sigmask(c.pid) == mask | 1 << (signal.SIGUSR1 - 1)
    native.set_sigmask(c.pid, mask)
    return None if ok else "mask set is not the mask read back"


def probe_peeksiginfo(c: ProbeChild) -> str | None:
    native.peek_siginfo(c.get(), False)
    native.peek_siginfo(c.pid, True)
    return None


def probe_rseq(c: ProbeChild) -> str | None:
    native.get_rseq_conf(c.get())
    return None


def probe_inject(c: ProbeChild) -> str | None:
    regs = native.get_regs(c.get())
    got = c.inject(NR_GETPID)
    if got != c.pid:
        return f"injected getpid() returned {got}, not {c.pid}"
    return None if native.get_regs(c.pid) == regs else "registers not restored"


def probe_vm_rw(c: ProbeChild) -> str | None:
    page = c.scratch()
    native.vm_write(c.pid, [(page, 8)], b"refcr-ok")
    return None if native.vm_read(c.pid, [(page, 8)]) == b"refcr-ok" else "read back differs"


def probe_pidfd(c: ProbeChild) -> str | None:
    pidfd = native.pidfd_open(c.get())
    try:
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{c.pid}/fd"))
        if not fds:
            return "the probe child has no fd to copy"
        fd = native.pidfd_getfd(pidfd, fds[0])
        same = os.stat(f"/proc/{c.pid}/fd/{fds[0]}").st_ino == os.fstat(fd).st_ino
        os.close(fd)
        if not same:
            return "the copied fd is a different file"
    finally:
        os.close(pidfd)
    return None


def probe_clone3_set_tid(c: ProbeChild) -> str | None:
    # In a fresh pid namespace pid 1 is always free: no collision possible.
    pid = native.clone3_puppet([1], native.CLONE_NEWPID)
    try:
        with open(f"/proc/{pid}/status") as f:
            nspid = next(l.split()[1:] for l in f if l.startswith("NSpid:"))
        return None if nspid[-1] == "1" else f"child got pid {nspid[-1]} instead of 1"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def probe_mm_map(c: ProbeChild) -> str | None:
    page = c.scratch()
    ret = c.inject(NR_PRCTL, PR_SET_MM, PR_SET_MM_MAP_SIZE, page, 0, 0)
    if ret < 0:
        return f"prctl(PR_SET_MM_MAP_SIZE): {os.strerror(-ret)}"
    size = struct.unpack("<I", native.vm_read(c.pid, [(page, 4)]))[0]
    return None if size else "PR_SET_MM_MAP_SIZE reported size 0"


def probe_pagemap(c: ProbeChild) -> str | None:
    page = c.scratch()
    native.vm_write(c.pid, [(page, 1)], b"x")
    runs = native.scan_pagemap(c.pid, page, page + mmap.PAGESIZE)
    return None if runs == [(page, 1)] else "a touched page is not reported present"


def probe_map_files(c: ProbeChild) -> str | None:
    with open(f"/proc/{c.get()}/maps") as f:
        first = f.readline().split()[0]
    fd = os.open(f"/proc/{c.pid}/map_files/{first}", os.O_RDONLY)
    os.close(fd)
    return None


def probe_memfd(c: ProbeChild) -> str | None:
    os.close(os.memfd_create("refcr-check", os.MFD_CLOEXEC))
    return None


def probe_tcp_repair(c: ProbeChild) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
        s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 0)
    return None


def probe_soft_dirty(c: ProbeChild) -> str | None:
    page = c.scratch()
    with open(f"/proc/{c.pid}/clear_refs", "w") as f:
        f.write("4")
    native.vm_write(c.pid, [(page, 1)], b"y")
    with open(f"/proc/{c.pid}/pagemap", "rb") as f:
        f.seek(page // mmap.PAGESIZE * 8)
        entry = struct.unpack("<Q", f.read(8))[0]
    return None if entry & PM_SOFT_DIRTY else "written page not marked soft-dirty (CONFIG_MEM_SOFT_DIRTY off?)"


def probe_uffd_wp(c: ProbeChild) -> str | None:
    from refcr.mm import track  # only this probe needs it
    return track.probe_uffd_wp_direct()


# (name, required, probe)
FEATURES: list[tuple[str, bool, Probe]] = [
    ("ptrace-seize", True, probe_seize),
    ("regset-prstatus", True, probe_regs),
    ("regset-xstate", True, probe_xstate),
    ("ptrace-sigmask", True, probe_sigmask),
    ("ptrace-peeksiginfo", True, probe_peeksiginfo),
    ("ptrace-rseq-config", True, probe_rseq),
    ("syscall-injection", True, probe_inject),
    ("process-vm-rw", True, probe_vm_rw),
    ("pidfd-getfd", True, probe_pidfd),
    ("clone3-set-tid", True, probe_clone3_set_tid),
    ("prctl-mm-map", True, probe_mm_map),
    ("pagemap", True, probe_pagemap),
    ("map-files", True, probe_map_files),
    ("memfd", True, probe_memfd),
    ("tcp-repair", True, probe_tcp_repair),
    ("soft-dirty", False, probe_soft_dirty),
    ("uffd-wp-async", False, probe_uffd_wp),
]


def run_probes() -> list[tuple[str, bool, str | None]]:
    """Run every probe; returns (name, required, reason-or-None)."""
    child = ProbeChild()
    results = []
    try:
        for name, required, probe in FEATURES:
            try:
                reason = probe(child)
            except OSError as e:
                reason = f"{e.filename}: {e.strerror}" if e.filename else (e.strerror or str(e))
            except Exception as e:  # a probe bug must not hide the others
                reason = f"{type(e).__name__}: {e}"
            results.append((name, required, reason))
    finally:
        child.close()
    return results


def main_check(opts: object = None) -> int:
    """Print one line per feature; 0 if all required ones work, else 1."""
    failed = False
    for name, required, reason in run_probes():
        extra = _TELLS.get(name, lambda _: "")(reason)
        if reason is None:
            print(f"{name}: works{extra}")
        else:
            print(f"{name}: missing ({reason}{'' if required else '; optional'}{extra})")
            failed |= required
    return 1 if failed else 0


# what a feature's presence decides, said on its line
_TELLS: dict[str, Callable[["str | None"], str]] = {
    "uffd-wp-async": lambda reason: "; --track-mem method: " + (
        "uffd-wp" if reason is None else "hash (page digests compared with the parent image)"),
}


if __name__ == "__main__":
    raise SystemExit(main_check())
