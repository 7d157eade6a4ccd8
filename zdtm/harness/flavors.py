"""Flavors: the environment a scenario is started in.

``h``   on the host, in the harness's namespaces.
``ns``  in new PID, mount, net, IPC and UTS namespaces (not implemented yet).
``uns`` like ``ns`` plus a user namespace (not implemented yet).

A flavor decides how the scenario is launched and which parts of the visible
state are comparable.  Adding ``ns`` means giving it a ``wrap`` that starts the
test as the init of fresh namespaces and clearing ``unavailable``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


def _identity(argv: list[str]) -> list[str]:
    return argv


@dataclass(frozen=True)
class Flavor:
    name: str
    summary: str
    # Turns the scenario's argv into the argv actually launched.
    wrap: Callable[[list[str]], list[str]] = _identity
    # Why this flavor cannot run here, or None if it can.
    unavailable: str | None = None
    # Extra options for both ``refcr dump`` and ``refcr restore``.
    cr_opts: tuple[str, ...] = ()
    # Snapshot fields that legitimately differ after C/R in this flavor.
    ignore_fields: frozenset[str] = field(default_factory=frozenset)


FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        Flavor("h", "host namespaces"),
        Flavor("ns", "new pid/mnt/net/ipc/uts namespaces", unavailable="flavor 'ns' is not implemented yet"),
        Flavor("uns", "ns plus a user namespace", unavailable="flavor 'uns' is not implemented yet"),
    )
}

DEFAULT_SELECTION = ("h",)


def parse_selection(text: str) -> tuple[str, ...]:
    """Parse --zdtm-flavor (comma separated; 'all' means every known flavor)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return tuple(FLAVORS)
    unknown = [n for n in names if n not in FLAVORS]
    if unknown:
        raise ValueError(f"unknown flavor(s) {unknown}; known: {sorted(FLAVORS)}")
    return tuple(names)
