"""Tests from another directory: ``pytest zdtm --zdtm-static=DIR``.

A plugin author keeps their zdtm tests next to their plugin, written for
CRIU's test library or for refcr's: DIR/NAME.c with an optional NAME.desc
in CRIU's format (desc.py, read non-strictly: an unknown key is a warning).
Each is built by ``make -C zdtm ext`` (CRIU's library lib/criu for a test
written for it, refcr's otherwise) into zdtm/work/ext/KEY/NAME, KEY naming
DIR, so DIR itself is never written to; a binary newer than its source and
both libraries is not rebuilt.  With ``--zdtm-libdir=PLUGINDIR`` every item
(these or zdtm/static's) loads the plugins of PLUGINDIR instead of its
.desc's ``plugins``.
"""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from .build import BuildResult
from .layout import Layout
from .locks import locked


def binary(layout: Layout, source: Path) -> Path:
    """Where the test of `source` is built."""
    key = hashlib.sha256(str(source.resolve().parent).encode()).hexdigest()[:12]
    return layout.work / "ext" / key / source.stem


def _fresh(out: Path, deps: list[Path]) -> bool:
    try:
        built = out.stat().st_mtime
        return all(d.stat().st_mtime <= built for d in deps)
    except FileNotFoundError:
        return False


def build(layout: Layout, source: Path, timeout: float = 300) -> BuildResult:
    """Build one test (make -C zdtm ext), under the suite's build lock."""
    out = binary(layout, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_suffix(".build.log")
    libs = [layout.zdtm / "lib" / "libzdtm.a", layout.zdtm / "lib" / "libzdtm-criu.a"]
    with locked(layout.work / ".build.lock"):
        if _fresh(out, [source, *libs]):
            return BuildResult(ok=True, log_path=str(log_path))
        try:
            with open(log_path, "w") as log:
                ok = subprocess.run(
                    ["make", "-s", "-C", str(layout.zdtm), "ext", f"SRC={source.resolve()}", f"OUT={out}"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                ).returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        tail = "" if ok else "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
    return BuildResult(ok=ok, log_path=str(log_path), tail=tail)
