"""Kernel feature probes for a desc's ``feature`` key.

Feature names are those of ``refcr check`` (one ``name: works`` or ``name:
missing (reason)`` line each), which tries every feature for real; it is run
once per process and its answer cached.  A few features refcr itself does not
need (namespaces the flavors use) are probed here.
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CHECK_LINE = re.compile(r"^([\w.-]+): (?:works|missing \((.*)\))(?:; .*)?$")   # "; ..." : what the feature decides


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
    "userns": _userns,
    "timens": _path_exists("/proc/self/ns/time"),
    "cgroupns": _path_exists("/proc/self/ns/cgroup"),
}


class UnknownFeature(Exception):
    pass


@dataclass
class FeatureProbe:
    """Answers 'is feature X here?' with the reason when it is not."""

    refcr: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    _check: dict[str, str | None] | None = None
    _check_error: str | None = None
    _cache: dict[str, str | None] = field(default_factory=dict)

    def _run_check(self) -> None:
        try:
            p = subprocess.run(
                [*self.refcr, "check"], cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                capture_output=True, text=True, timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            self._check, self._check_error = {}, f"refcr check failed to run: {e}"
            return
        answers = {}
        for line in p.stdout.splitlines():
            m = CHECK_LINE.match(line.strip())
            if m:
                answers[m.group(1)] = None if m.group(2) is None and "works" in line else (m.group(2) or "missing")
        self._check = answers
        if not answers:
            last = (p.stderr.strip().splitlines() or ["no output"])[-1]
            self._check_error = f"refcr check gave no answers: {last}"

    def missing(self, name: str) -> str | None:
        """None if the feature is available, else why not. Raises UnknownFeature."""
        if name in self._cache:
            return self._cache[name]
        local = LOCAL_PROBES.get(name)
        if local is not None:
            why = local()
        else:
            if self._check is None:
                self._run_check()
            assert self._check is not None
            if name in self._check:
                why = self._check[name]
            elif self._check_error:
                why = self._check_error
            else:
                raise UnknownFeature(
                    f"unknown feature {name!r}; known: {sorted(set(self._check) | set(LOCAL_PROBES))}"
                )
        self._cache[name] = why
        return why
