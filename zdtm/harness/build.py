"""Build the scenarios once per process, serialised across processes."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

from .layout import Layout
from .locks import locked


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    log_path: str
    tail: str = ""


def build(layout: Layout, jobs: int = 2, timeout: float = 600) -> BuildResult:
    """Run ``make -C zdtm -jN`` under an exclusive lock on zdtm/work/.build.lock.

    Parallel pytest-xdist workers all call this; the first builds, the others
    wait for the lock and then find nothing to do.
    """
    layout.work.mkdir(parents=True, exist_ok=True)
    log_path = layout.work / "build.log"
    with locked(layout.work / ".build.lock"):
        try:
            with open(log_path, "w") as log:
                p = subprocess.run(
                    ["make", "-C", str(layout.zdtm), f"-j{jobs}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    timeout=timeout,
                )
            ok = p.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        except OSError as e:
            log_path.write_text(f"cannot run make: {e}\n")
            ok = False
        tail = "" if ok else "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
    return BuildResult(ok=ok, log_path=str(log_path), tail=tail)
