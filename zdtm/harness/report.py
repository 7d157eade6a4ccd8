"""What a failure report shows, and the required-scenarios check."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

TAIL_LINES = 40
NODEID = re.compile(r"(?:^|/)([^/:]+)\.c::([\w-]+)$|(?:^|/)apps/([^/:]+)\.py::([\w-]+)$")


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    text = path.read_text(errors="replace").splitlines()
    head = [f"... ({len(text) - lines} earlier lines in {path})"] if len(text) > lines else []
    return "\n".join(head + text[-lines:])


def scenario_of(nodeid: str) -> tuple[str, str] | None:
    """(name, flavor) for a zdtm item id such as zdtm/static/NAME.c::h or
    zdtm/apps/NAME.py::h (xdist's --dist loadgroup may append @GROUP)."""
    m = NODEID.search(nodeid.split("@", 1)[0])
    if m is None:
        return None
    return (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))


def read_required(path: Path) -> frozenset[str]:
    if not path.exists():
        return frozenset()
    names = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return frozenset(n for n in names if n)


@dataclass
class RequiredTracker:
    """Outcomes of the required scenarios, fed from every test report.

    Each required scenario must pass in every flavor of ``required`` (h, ns
    and uns, fewer if its .desc restricts its flavors).  Under pytest-xdist the
    controller sees every worker's reports, so this runs there (or in the only
    process without xdist).  Items of flavors not selected in this session are
    never counted.
    """

    required: dict[str, tuple[str, ...]]  # name -> flavors it must pass in
    selected: tuple[str, ...]
    seen: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> {flavor: outcome}
    skip_reasons: dict[str, str] = field(default_factory=dict)

    def record(self, nodeid: str, when: str, outcome: str, skip_reason: str | None) -> None:
        key = scenario_of(nodeid)
        if key is None or key[0] not in self.required:
            return
        name, flavor = key
        if flavor not in self.required[name] or flavor not in self.selected:
            return
        per = self.seen.setdefault(name, {})
        if outcome == "skipped":
            per[flavor] = "skipped"
            self.skip_reasons[f"{name}::{flavor}"] = skip_reason or "?"
        elif outcome == "failed":
            per[flavor] = "failed"
        elif when == "call" and per.get(flavor) is None:
            per[flavor] = "passed"

    def problems(self, whole_suite: bool) -> list[str]:
        out = []
        for name in sorted(self.required):
            per = self.seen.get(name, {})
            for flavor in self.required[name]:
                outcome = per.get(flavor)
                if outcome == "skipped":
                    out.append(f"{name}::{flavor} was skipped: {self.skip_reasons[f'{name}::{flavor}']}")
                elif outcome is None and whole_suite:
                    out.append(f"{name}::{flavor} was not run (no such scenario, deselected, or filtered out)")
        return out


def skip_reason(longrepr: object) -> str | None:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return None
