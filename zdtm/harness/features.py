"""Kernel feature probes for a desc's ``feature`` key.

Each probe returns None when the feature is present, else the reason it is
missing.  A feature without a local probe is asked of ``refcr check --feature
NAME`` (exit 0: present).  Results are cached per session by the caller.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def _kernel_at_least(major: int, minor: int) -> Callable[[], str | None]:
    def probe() -> str | None:
        m = re.match(r"(\d+)\.(\d+)", platform.release())
        if m is None:
            return f"cannot parse kernel release {platform.release()!r}"
        if (int(m.group(1)), int(m.group(2))) >= (major, minor):
            return None
        return f"needs kernel >= {major}.{minor}, running {platform.release()}"

    return probe


def _path_exists(path: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        return None if os.path.exists(path) else f"{path} does not exist"

    return probe


def _userns() -> str | None:
    if not os.path.exists("/proc/self/ns/user"):
        return "no user namespaces"
    knob = Path("/proc/sys/kernel/unprivileged_userns_clone")
    if knob.exists() and knob.read_text().strip() == "0":
        return "user namespaces disabled (kernel.unprivileged_userns_clone=0)"
    return None


LOCAL_PROBES: dict[str, Callable[[], str | None]] = {
    "rseq": _kernel_at_least(4, 18),
    "clone3": _kernel_at_least(5, 3),
    "clone3_set_tid": _kernel_at_least(5, 5),
    "pidfd_getfd": _kernel_at_least(5, 6),
    "ptrace_get_rseq_conf": _kernel_at_least(5, 13),
    "memfd": _kernel_at_least(3, 17),
    "timens": _path_exists("/proc/self/ns/time"),
    "userns": _userns,
    "mem_dirty_track": _path_exists("/proc/self/pagemap"),
}


def probe(name: str, env: dict[str, str], cwd: Path) -> str | None:
    """None if feature ``name`` is available, else why not."""
    local = LOCAL_PROBES.get(name)
    if local is not None:
        return local()
    try:
        p = subprocess.run(
            [sys.executable, "-m", "refcr", "check", "--feature", name],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"feature {name!r}: refcr check failed to run: {e}"
    if p.returncode == 0:
        return None
    why = (p.stderr.strip().splitlines() or ["no reason given"])[-1]
    return f"feature {name!r} missing: {why}"
