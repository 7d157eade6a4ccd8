"""A private "host" mount namespace for scenarios with external mounts (.desc
``'outer_mnt'``).

``'outer_mnt': ['ext-src']``: the harness makes a mount namespace of its own
(held by a ``sleep`` process in it, every mount private) and mounts a small
tmpfs (source ``zdtm-ext``) on each listed directory of the work dir there.
nslaunch (so the scenario's namespaces are copies of it) and every ``refcr``
command then run in it (``nsenter --mount --wd=WORKDIR``).  For the scenario
this tmpfs is "the host's": it may bind a file of it into its own tree and
unmount the tmpfs itself, so that the bind's source is outside its visible
tree while refcr still sees it.  Nothing reaches the real host's mounts; the
namespace vanishes with its holder at the end of the run.
"""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class OuterMntError(Exception):
    """The private mount namespace could not be set up; the message says why."""


@dataclass
class OuterMnt:
    holder: subprocess.Popen
    workdir: Path

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.pid}/ns/mnt"

    @classmethod
    def start(cls, dirs: tuple[str, ...], workdir: Path, log: Path) -> "OuterMnt":
        holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sleep", "infinity"],
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        own = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 10
        while True:        # never mount anything before the holder is in a namespace of its own
            try:
                if os.readlink(f"/proc/{holder.pid}/ns/mnt") != own:
                    break
            except OSError:
                pass
            if holder.poll() is not None or time.monotonic() > deadline:
                holder.kill()
                holder.wait()
                raise OuterMntError("unshare --mount did not make its namespace")
            time.sleep(0.005)
        ns = cls(holder, workdir)
        try:
            for d in dirs:
                target = (workdir / d).resolve()
                if workdir.resolve() not in target.parents:
                    raise OuterMntError(f"outer_mnt: {d} is not inside the work dir")
                target.mkdir(parents=True, exist_ok=True)
                ns.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "zdtm-ext", str(target)], log)
        except BaseException:
            ns.stop()
            raise
        return ns

    def wrap(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--mount={self.path}", f"--wdns={self.workdir}", "--", *argv]

    def run(self, argv: list[str], log: Path) -> None:
        with open(log, "ab") as out:
            out.write(f"outer mntns: {' '.join(argv)}\n".encode())
            out.flush()
            rc = subprocess.run(self.wrap(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                timeout=30, check=False).returncode
        if rc != 0:
            raise OuterMntError(f"outer mntns setup: {' '.join(argv)} exited with status {rc}")

    def stop(self) -> None:
        self.holder.kill()
        self.holder.wait()
