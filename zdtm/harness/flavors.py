"""Flavors: the environment a scenario is started in.

``h``   on the host, in the harness's namespaces; the test library forks and
        daemonizes, the pidfile holds the test's pid.
``ns``  pid 1 of new PID, mount, net, IPC and UTS namespaces (launched by
        nslaunch.py; the library runs in pid-1 mode and does not fork); the
        pidfile holds ``1``, the harness uses the OUTER pid it got from the
        launcher.
``uns`` like ``ns``, all of them owned by a user namespace of their own
        (created first, nslaunch.py USERNS_MAP: root is root, the other ids
        are shifted by 100000-1).

A flavor decides how the scenario is launched and which parts of the visible
state are comparable after C/R.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Flavor:
    name: str
    summary: str
    # Started as pid 1 of new namespaces (nslaunch.py) rather than directly.
    namespaces: bool = False
    # ... plus a new user namespace.
    userns: bool = False
    # Why this flavor cannot run here, or None if it can.
    unavailable: str | None = None
    # Extra options for both ``refcr dump`` and ``refcr restore``.
    cr_opts: tuple[str, ...] = ()
    # Snapshot fields that legitimately differ after C/R in this flavor.
    ignore_fields: frozenset[str] = field(default_factory=frozenset)

    @property
    def pid1(self) -> bool:
        """The scenario is the init of its own PID namespace."""
        return self.namespaces

    def launch_argv(self, launcher: str, python: str, argv: list[str]) -> list[str]:
        """The argv that starts *argv* in this flavor (launcher: nslaunch.py's path)."""
        if not self.namespaces:
            return argv
        return [python, launcher, *(["--userns"] if self.userns else []), "--", *argv]


FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        Flavor("h", "host namespaces"),
        Flavor("ns", "pid 1 of new pid/mnt/net/ipc/uts namespaces", namespaces=True),
        Flavor("uns", "ns plus a user namespace", namespaces=True, userns=True),
    )
}

# What a run without --zdtm-flavor selects, and the flavors in which a scenario
# of required.txt must pass (unless its .desc restricts it to fewer).
DEFAULT_SELECTION = ("h", "ns", "uns")
REQUIRED_FLAVORS = ("h", "ns", "uns")


def parse_selection(text: str) -> tuple[str, ...]:
    """Parse --zdtm-flavor (comma separated; 'all' means every known flavor)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return tuple(FLAVORS)
    unknown = [n for n in names if n not in FLAVORS]
    if unknown:
        raise ValueError(f"unknown flavor(s) {unknown}; known: {sorted(FLAVORS)}")
    return tuple(names)


def unavailable_here(flavor: Flavor) -> str | None:
    """Why *flavor* cannot run on this machine / as this user, or None."""
    if flavor.unavailable:
        return flavor.unavailable
    if flavor.namespaces and os.geteuid() != 0:
        return f"flavor {flavor.name!r} needs root (creating namespaces and mounting /proc)"
    if flavor.userns and not os.path.exists("/proc/self/ns/user"):
        return f"flavor {flavor.name!r}: the kernel has no user namespaces"
    return None


def required_in(desc_flavors: tuple[str, ...] | None) -> tuple[str, ...]:
    """The flavors a required scenario must pass in, given its .desc's ``flavor``."""
    if desc_flavors is None:
        return REQUIRED_FLAVORS
    return tuple(f for f in REQUIRED_FLAVORS if f in desc_flavors)
