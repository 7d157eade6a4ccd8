"""Build what the suite needs once per process, serialised across processes.

``make -C zdtm`` (the library, lib/criu's CRIU-flavoured library, every
scenario) and ``make -C plugins`` (the shipped plugins scenarios load with
the .desc key ``plugins``), so a plain ``pytest zdtm`` or ``tox`` in a fresh
clone runs the same suite as ./dev.sh test.  The QEMU guest is prepared on
demand by the first item that needs it (guest.py).  Tests of a
``--zdtm-static`` directory are built by external.py.
"""
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
    """Run ``make -C zdtm -jN`` and ``make -C plugins -jN`` under an exclusive
    lock on zdtm/work/.build.lock.

    Parallel pytest-xdist workers all call this; the first builds, the others
    wait for the lock and then find nothing to do.
    """
    layout.work.mkdir(parents=True, exist_ok=True)
    log_path = layout.work / "build.log"
    with locked(layout.work / ".build.lock"):
        try:
            with open(log_path, "w") as log:
                ok = all(
                    subprocess.run(
                        ["make", "-C", str(d), f"-j{jobs}"],
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        timeout=timeout,
                    ).returncode == 0
                    for d in (layout.zdtm, layout.repo / "plugins")
                )
        except subprocess.TimeoutExpired:
            ok = False
        except OSError as e:
            log_path.write_text(f"cannot run make: {e}\n")
            ok = False
        tail = "" if ok else "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
    return BuildResult(ok=ok, log_path=str(log_path), tail=tail)
