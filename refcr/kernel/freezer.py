"""--freeze-cgroup: freeze the tree through its freezer cgroup, then seize it.

Without it refcr seizes the tree top down, one task at a time, listing the
threads and children again until nothing new appears: a tree that forks
fast can keep that walk busy.  With it (CRIU's --freeze-cgroup, runc's
freeze_cgroup) the kernel stops the whole cgroup first, so the set of tasks
cannot change; refcr then PTRACE_SEIZEs and PTRACE_INTERRUPTs every thread
of the tree without waiting, thaws the cgroup, and only then waits for the
interrupt stops (a task in the v1 freezer's refrigerator takes its ptrace
stop only once thawed).  As CRIU does it (criu/seize.c freeze_processes,
then the seize while frozen and the thaw).

Cgroup v1: freezer.state FROZEN / THAWED, FREEZING while in progress.
Cgroup v2: cgroup.freeze 1 / 0, done when cgroup.events says "frozen 1".
The path must be a directory under /sys/fs/cgroup holding one of them.

Death safety: the cgroup is thawed on every failure (the dump's own undo),
and refcr's guardian (ptrace/guardian.py) is told the cgroup before it is
frozen: if refcr dies while it is frozen, the guardian thaws it before it
puts the tasks back.  A SIGKILL of refcr and its guardian together leaves
it frozen (``echo THAWED > freezer.state`` by hand).  A cgroup that is
already frozen is refused: refcr would have to thaw a cgroup it did not
freeze.

Cost: one write and a poll every 1 ms until frozen (a few ms), one write to
thaw.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from refcr.errors import DumpError, OptionError
from refcr.log import log

CGROUP_ROOT = "/sys/fs/cgroup"
FREEZE_TIMEOUT = 10.0          # seconds until the kernel must have frozen every task


@dataclass(frozen=True)
class Freezer:
    path: str                  # the cgroup directory (real path)
    v2: bool                   # cgroup.freeze (v2) rather than freezer.state (v1)

    @classmethod
    def open(cls, path: str) -> "Freezer":
        real = os.path.realpath(path)
        if not real.startswith(CGROUP_ROOT + "/"):
            raise OptionError(f"--freeze-cgroup {path}: not a cgroup directory under {CGROUP_ROOT}")
        if os.path.exists(os.path.join(real, "freezer.state")):
            return cls(real, False)
        if os.path.exists(os.path.join(real, "cgroup.freeze")):
            return cls(real, True)
        raise OptionError(f"--freeze-cgroup {path}: no freezer.state (cgroup v1) or cgroup.freeze (v2) there")

    def _write(self, name: str, text: str) -> None:
        with open(os.path.join(self.path, name), "w") as f:
            f.write(text)

    def _read(self, name: str) -> str:
        with open(os.path.join(self.path, name)) as f:
            return f.read()

    def state(self) -> str:
        """FROZEN, FREEZING or THAWED."""
        if not self.v2:
            return self._read("freezer.state").strip()
        events = dict(line.split(None, 1) for line in self._read("cgroup.events").splitlines() if " " in line)
        if events.get("frozen", "0").strip() == "1":
            return "FROZEN"
        return "FREEZING" if self._read("cgroup.freeze").strip() == "1" else "THAWED"

    def freeze(self, timeout: float = FREEZE_TIMEOUT) -> None:
        if self.state() != "THAWED":
            raise OptionError(f"--freeze-cgroup {self.path}: the cgroup is {self.state().lower()} already "
                              "(refcr thaws only what it froze)")
        self._write("cgroup.freeze" if self.v2 else "freezer.state", "1" if self.v2 else "FROZEN")
        deadline = time.monotonic() + timeout
        while self.state() != "FROZEN":
            if time.monotonic() > deadline:
                self.thaw()
                raise DumpError(f"the cgroup {self.path} did not freeze in {timeout:.0f} s")
            time.sleep(0.001)
        log.info("cgroup %s frozen", self.path)

    def thaw(self) -> None:
        self._write("cgroup.freeze" if self.v2 else "freezer.state", "0" if self.v2 else "THAWED")
        log.info("cgroup %s thawed", self.path)

    def thaw_quietly(self) -> None:
        try:
            self.thaw()
        except OSError as exc:
            log.error("cannot thaw the cgroup %s: %s", self.path, exc.strerror)

    def holds(self, pid: int) -> bool:
        """pid is in this cgroup (or below it)."""
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, ctrls, rel = line.rstrip("\n").split(":", 2)
                if self.v2 != (ctrls == "") or (not self.v2 and "freezer" not in ctrls.split(",")):
                    continue
                mine = os.path.relpath(self.path, self.mount_root())
                rel = rel.lstrip("/")
                return mine == "." or rel == mine or rel.startswith(mine + "/")
        return False

    def mount_root(self) -> str:
        """The mount point of the hierarchy the cgroup is in."""
        best = ""
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                fstype = line.partition(" - ")[2].split()[0]
                point = parts[4]
                if fstype in ("cgroup", "cgroup2") and (self.path == point or self.path.startswith(point + "/")):
                    if len(point) > len(best):
                        best = point
        return best or CGROUP_ROOT
