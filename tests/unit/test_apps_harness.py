"""zdtm/harness/apps.py and its neighbours: app item ids count for
required.txt, what a clean SIGTERM exit is, every driver loads, and the
JVM's reserved-span normalisation hides a commit but not a change."""
from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

import pytest

from zdtm.harness import apps, report, snapshot
from zdtm.harness.snapshot import Vma

APPS = Path(__file__).resolve().parents[2] / "zdtm" / "apps"


def test_app_ids_are_scenarios_of_the_required_list() -> None:
    assert report.scenario_of("zdtm/apps/redis.py::ns") == ("redis", "ns")
    assert report.scenario_of("zdtm/apps/redis.py::h@terminals") == ("redis", "h")
    assert report.scenario_of("zdtm/static/pipe00.c::h") == ("pipe00", "h")
    assert report.scenario_of("tests/test_engine.py::test_x") is None


def test_clean_exit() -> None:
    assert apps.clean_exit(0)
    assert apps.clean_exit(signal.SIGTERM)                      # killed by it
    assert apps.clean_exit((128 + signal.SIGTERM) << 8)         # the JVM's exit status 143
    assert not apps.clean_exit(1 << 8)
    assert not apps.clean_exit(signal.SIGKILL)


@pytest.mark.parametrize("source", sorted(p for p in APPS.glob("*.py") if not p.name.startswith("_")),
                         ids=lambda p: p.stem)
def test_every_driver_loads(source: Path) -> None:
    app = apps.load_app(source)
    sc = apps.scenario_of(source, app)
    assert sc.name == source.stem and set(sc.flavors or ()) <= {"h", "ns", "uns"}


def _tree(*vmas: Vma) -> snapshot.TreeState:
    task = snapshot.TaskState(pid=1, parent=0, sid=1, pgid=1, zombie=False, status=(), threads=(),
                              namespaces=(), mm=(), cwd="", root="", exe="", personality="", attrs=(),
                              timers=(), limits=(), vmas=vmas, fds=(), mounts=())
    return snapshot.TreeState((task,))


def _anon(start: int, end: int, perms: str) -> Vma:
    return Vma(start, end, perms, 0, "00:00", 0, "", None, "")


def test_jvm_commit_into_its_reservation_is_not_a_change() -> None:
    jvm = apps.load_app(APPS / "jvm.py")
    before = _tree(_anon(0x1000, 0x4000, "rw-p"), _anon(0x4000, 0x9000, "---p"))
    after = _tree(_anon(0x1000, 0x5000, "rw-p"), _anon(0x5000, 0x9000, "---p"))
    assert snapshot.diff(before, after)                         # as /proc shows it: a change
    assert not snapshot.diff(jvm.normalise(before), jvm.normalise(after))
    moved = _tree(_anon(0x2000, 0x5000, "rw-p"), _anon(0x5000, 0x9000, "---p"))
    assert snapshot.diff(jvm.normalise(before), jvm.normalise(moved))   # a span that moved still shows
    named = _tree(replace(_anon(0x1000, 0x4000, "rw-p"), path="/x", inode=5), _anon(0x4000, 0x9000, "---p"))
    assert len(jvm.normalise(named).tasks[0].vmas) == 2         # file mappings are not merged
