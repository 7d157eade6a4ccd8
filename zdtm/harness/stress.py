"""--zdtm-stress: the whole session on a loaded machine.

One CPU hog per core (a busy loop at normal priority) and one memory hog
(an area of a tenth of MemAvailable, at most 2 GiB, written page by page
over and over, so reclaim and the page cache work while scenarios run) are
started by the controlling pytest process (not by each xdist worker) when
the session configures and killed when it ends.  Every hog has
PR_SET_PDEATHSIG=SIGKILL and its own process group, so a pytest that dies
leaves none behind.  With the option, timeouts are three times longer
(unless --zdtm-timeout-scale says otherwise): they catch hangs, not speed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field

PRELUDE = ("import ctypes, signal\n"
           "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n")   # PR_SET_PDEATHSIG
CPU_HOG = PRELUDE + "while True:\n    pass\n"
MEM_HOG = PRELUDE + (
    "import mmap, sys\n"
    "size = int(sys.argv[1])\n"
    "m = mmap.mmap(-1, size)\n"
    "n = 0\n"
    "while True:\n"
    "    n = (n + 1) & 0xff\n"
    "    for off in range(0, size, 4096):\n"
    "        m[off] = n\n"
)
MAX_MEM = 2 << 30


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Stress:
    """The hogs of one session."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _spawn(self, code: str, *args: str) -> None:
        self.procs.append(subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True))

    @classmethod
    def start(cls) -> Stress:
        s = cls()
        for _ in range(os.cpu_count() or 1):
            s._spawn(CPU_HOG)
        s._spawn(MEM_HOG, str(min(MAX_MEM, mem_available() // 10) & ~4095 or 4096))
        return s

    def stop(self) -> None:
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            p.wait()
        self.procs.clear()

    def describe(self) -> str:
        pids = " ".join(str(p.pid) for p in self.procs)
        return f"stress: {len(self.procs) - 1} CPU hog(s), 1 memory hog (pids {pids})"
