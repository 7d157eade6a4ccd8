"""A process that holds a namespace of its own for the length of one item.

The private "host" namespaces of outermnt.py and outerns.py are each held by
``unshare --KIND ... sleep infinity``; commands run in them through
``nsenter``.  This is the part they share: start the holder and wait until
it really is in a new namespace (nothing may be set up in the real host's),
run a set-up command there with its output in the item's log, stop it.
"""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


class NsHolderError(Exception):
    """The namespace could not be set up; the message says why."""


@dataclass
class NsHolder:
    holder: subprocess.Popen

    kind: ClassVar[str]      # the /proc/PID/ns/ name and unshare's --KIND
    label: ClassVar[str]     # "outer netns": in log lines and errors

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.pid}/ns/{self.kind}"

    @classmethod
    def spawn(cls, unshare_args: list[str], timeout: float = 10.0) -> subprocess.Popen:
        """Start the holder; return once its namespace differs from ours."""
        holder = subprocess.Popen(["unshare", *unshare_args, "--", "sleep", "infinity"],
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        own = os.readlink(f"/proc/self/ns/{cls.kind}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                if os.readlink(f"/proc/{holder.pid}/ns/{cls.kind}") != own:
                    return holder
            except OSError:
                pass
            if holder.poll() is not None or time.monotonic() > deadline:
                holder.kill()
                holder.wait()
                raise NsHolderError(f"unshare {' '.join(unshare_args)} did not make its namespace")
            time.sleep(0.005)

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run inside the namespace."""
        return ["nsenter", f"--{self.kind}={self.path}", "--", *argv]

    def run(self, argv: list[str], log: Path) -> None:
        """A set-up command in the namespace (no shell); its output goes to log."""
        with open(log, "ab") as out:
            out.write(f"{self.label}: {' '.join(argv)}\n".encode())
            out.flush()
            rc = subprocess.run(self.wrap(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                timeout=30, check=False).returncode
        if rc != 0:
            raise NsHolderError(f"{self.label} setup: {' '.join(argv)} exited with status {rc}")

    def stop(self) -> None:
        self.holder.kill()
        self.holder.wait()
