"""The threads of a restored process are made by one batch of clone3 calls
(ptrace/puppet.py clone_threads).  A thread id the host already uses must
fail that batch in one line naming the id, leave the holder of the id
untouched and nothing of the restore alive; the same images then restore
with every thread under its own id."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from crafted import Dumped, copy_images, dump_program, edit, kill_restored, refcr

from refcr.images.imagedir import ImageDir


@pytest.fixture(scope="module")
def threads_dump(tmp_path_factory: pytest.TempPathFactory) -> Dumped:
    return dump_program("threads", tmp_path_factory.mktemp("thread-clone"))


def _tasks(pid: int) -> list[int]:
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))


def test_a_busy_thread_id_fails_the_restore_cleanly(threads_dump: Dumped, tmp_path: Path) -> None:
    images = copy_images(threads_dump, tmp_path / "img")
    holder = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        pid = threads_dump.pid
        def busy_core(entries: list[Any]) -> None:
            entries[0].threads[2].tid = holder.pid
        def busy_tree(entries: list[Any]) -> None:
            entries[0].threads[2] = holder.pid
        edit(images, "core", busy_core, id=pid)
        edit(images, "pstree", busy_tree)
        res = refcr("restore", "-D", str(images), "-d", "-o", "restore.log", cwd=tmp_path)
        kill_restored(pid)
        assert res.returncode == 1, res.stderr
        assert res.stderr.count("\n") == 1 and f"pid {holder.pid} is in use" in res.stderr, res.stderr
        assert not os.path.exists(f"/proc/{pid}"), "a puppet survived the failed restore"
        assert holder.poll() is None and open(f"/proc/{holder.pid}/stat").read().split(") ")[1][0] == "S"
    finally:
        holder.kill()
        holder.wait()


def test_every_thread_gets_its_own_id(threads_dump: Dumped, tmp_path: Path) -> None:
    images = copy_images(threads_dump, tmp_path / "img")
    res = refcr("restore", "-D", str(images), "-d", "-o", "restore.log", cwd=tmp_path)
    try:
        assert res.returncode == 0, res.stderr
        with ImageDir(str(images), "r") as d:
            want = sorted(d.read("pstree")[0].threads)
        assert _tasks(threads_dump.pid) == want and len(want) == 4
    finally:
        kill_restored(threads_dump.pid)
