"""Helpers shared by the whole-program tests: processes a test starts (all
killed at teardown), the subreaper that lets restored processes come back to
us, and the check that a refused command says exactly one line."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from zdtm.harness import procs


class HasStreams(Protocol):
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Processes:
    """Processes a test started; every one is killed and reaped at teardown."""

    pids: set[int] = field(default_factory=set)

    def spawn(self, argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self.pids.add(p.pid)
        return p

    def kill_all(self) -> None:
        for pid in self.pids:
            procs.kill_tree(pid, procs.own_session(pid))


@pytest.fixture(scope="module", autouse=True)
def subreaper() -> None:
    # Restored processes are reparented to us when refcr restore -d exits.
    procs.become_subreaper()


@pytest.fixture
def processes() -> Iterator[Processes]:
    ps = Processes()
    yield ps
    ps.kill_all()


def assert_one_line_error(res: HasStreams) -> None:
    assert res.returncode != 0, "expected failure"
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one stderr line, got: {res.stderr!r}"


