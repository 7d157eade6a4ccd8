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

from dataclasses import dataclass
from pathlib import Path

from .nsholder import NsHolder, NsHolderError

OuterMntError = NsHolderError


@dataclass
class OuterMnt(NsHolder):
    workdir: Path = Path()

    kind = "mnt"
    label = "outer mntns"

    @classmethod
    def start(cls, dirs: tuple[str, ...], workdir: Path, log: Path) -> "OuterMnt":
        ns = cls(cls.spawn(["--mount", "--propagation", "private"]), workdir)
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
