"""kernel/sharing.py's decisions on a tree (kcmp replaced by a table of
which host pids share which object): what a child shares with its parent is
recorded as clone flags, every other sharing is refused in one line."""
from __future__ import annotations

import pytest

from refcr.errors import UnsupportedObject
from refcr.kernel import sharing
from refcr.kernel.pstree import Member
from refcr.pb import pstree_pb2


def _tree(*pids: tuple[int, int]) -> list[Member]:
    """(pid, ppid) pairs, parents first; host pids are pid + 1000."""
    return [Member(pid + 1000, pstree_pb2.PstreeEntry(pid=pid, ppid=ppid)) for pid, ppid in pids]


def _objects(monkeypatch: pytest.MonkeyPatch, objects: dict[int, dict[int, str]], ordered: bool = True) -> None:
    """objects[kind][host pid]: the name of the object; absent: the process's own.
    kcmp as the kernel's: 0 for the same object, else 1 or 2 by a total order
    of the objects (ordered=False: 3, a kernel that gives no order)."""
    def kcmp(a: int, b: int, kind: int) -> int:
        own = objects.get(kind, {})
        x, y = str(own.get(a, a)), str(own.get(b, b))
        if x == y:
            return 0
        return (1 if x < y else 2) if ordered else 3
    monkeypatch.setattr(sharing.native, "kcmp", kcmp)


def test_nothing_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    _objects(monkeypatch, {})
    tree = _tree((1, 0), (2, 1), (3, 1))
    sharing.dump(tree)
    assert [m.entry.clone_flags for m in tree] == [0, 0, 0]


def test_chain_with_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    fs = {1001: "fs", 1002: "fs", 1004: "fs"}
    _objects(monkeypatch, {sharing.KCMP_FS: fs, sharing.KCMP_FILES: {1001: "t", 1003: "t"}})
    tree = _tree((1, 0), (2, 1), (3, 1), (4, 2))
    sharing.dump(tree)
    assert [m.entry.clone_flags for m in tree] == [0, sharing.CLONE_FS, sharing.CLONE_FILES, sharing.CLONE_FS]


@pytest.mark.parametrize("ordered", [True, False])
def test_chain_with_the_parent_any_kcmp(monkeypatch: pytest.MonkeyPatch, ordered: bool) -> None:
    """The same grouping by a sort in kcmp's order and by the scan of a kernel
    without one; processes listed so that the order of objects differs from theirs."""
    fs = {1001: "z", 1002: "z", 1004: "z", 1003: "a", 1005: "a"}
    _objects(monkeypatch, {sharing.KCMP_FS: fs}, ordered)
    tree = _tree((1, 0), (2, 1), (3, 1), (4, 2), (5, 3))
    sharing.dump(tree)
    assert [m.entry.clone_flags for m in tree] == [0, sharing.CLONE_FS, 0, sharing.CLONE_FS, sharing.CLONE_FS]


def test_siblings_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _objects(monkeypatch, {sharing.KCMP_FS: {1002: "fs", 1003: "fs"}})     # CLONE_PARENT|CLONE_FS
    with pytest.raises(UnsupportedObject, match=r"1002 and 1003 share cwd.*not its parent"):
        sharing.dump(_tree((1, 0), (2, 1), (3, 1)))


def test_sighand_and_vm_with_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    _objects(monkeypatch, {sharing.KCMP_SIGHAND: {1001: "s", 1002: "s"}, sharing.KCMP_VM: {1001: "m", 1002: "m"}})
    tree = _tree((1, 0), (2, 1))
    sharing.dump(tree)
    assert tree[1].entry.clone_flags == sharing.CLONE_VM | sharing.CLONE_SIGHAND and not tree[0].entry.clone_flags


def test_vm_of_a_sibling_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _objects(monkeypatch, {sharing.KCMP_VM: {1002: "m", 1003: "m"}})
    with pytest.raises(UnsupportedObject, match=r"1002 and 1003 share an address space.*not its parent"):
        sharing.dump(_tree((1, 0), (2, 1), (3, 1)))


def test_flags_decide_who_restores() -> None:
    assert sharing.restores_mm(sharing.CLONE_FILES) and not sharing.restores_mm(sharing.CLONE_VM)
    assert sharing.restores_fs(0) and sharing.restores_files(0)
    assert not sharing.restores_fs(sharing.CLONE_FS) and sharing.restores_files(sharing.CLONE_FS)
    assert not sharing.restores_files(sharing.CLONE_FILES) and sharing.restores_fs(sharing.CLONE_FILES)
