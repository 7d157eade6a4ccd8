"""A crafted image cannot make `refcr restore` create, truncate or change a
host file it does not own (README: "What an image can and cannot make refcr do").

One real program (tests/crafted.py ``files``: a shared file mapping, an open
file, a named unix socket) is dumped once; each test edits a copy of its
images the way an attacker would and restores it from a working directory
three levels below the test's directory, so ``../../../x`` names a file
in it.  Every test checks that the victim file is untouched and that nothing
appeared outside the image directory, and that refcr answered with at most
one line (never exit 2 or a traceback).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import fuzz
from crafted import Dumped, copy_images, dump_program, edit, kill_restored, refcr

from refcr import cli

from refcr.images.imagedir import ImageDir
from refcr.pb import mm_pb2, pagemap_pb2

VICTIM = b"precious contents\n"
PAGE = 4096


@pytest.fixture(scope="module")
def files_dump(tmp_path_factory: pytest.TempPathFactory) -> Dumped:
    return dump_program("files", tmp_path_factory.mktemp("containment"))


class Scene:
    """A copy of the images, a victim file and a deep working directory."""

    def __init__(self, d: Dumped, tmp: Path) -> None:
        self.d = d
        self.tmp = tmp
        self.images = copy_images(d, tmp / "img")
        self.victim = tmp / "victim"
        self.victim.write_bytes(VICTIM)
        self.cwd = tmp / "a" / "b" / "c"
        self.cwd.mkdir(parents=True)
        self.before = self.outside()
        (d.home / "sock").unlink(missing_ok=True)    # the dumped socket file: restore binds it again

    def outside(self) -> dict[str, tuple[int, int, int]]:
        """Every file under the test's directory and the program's, but the images."""
        seen = {}
        for top in (self.tmp, self.d.home):
            for dirpath, dirs, files in os.walk(top):
                if Path(dirpath) == self.images:
                    dirs.clear()
                    continue
                for name in files + dirs:
                    path = os.path.join(dirpath, name)
                    st = os.lstat(path)
                    seen[path] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return seen

    def vma(self, entries: list[Any]) -> Any:
        """The shared file mapping of the data file."""
        return next(v for v in entries[0].vmas if v.kind == mm_pb2.VMA_FILE_SHARED)

    def restore(self, fault: str | None = None) -> Any:
        res = refcr("restore", "-D", str(self.images), "-d", cwd=self.cwd,
                    extra_env={"REFCR_FAULT": fault} if fault else None)
        kill_restored(self.d.pid)
        assert res.returncode in (0, 1), res.stderr
        assert "Traceback" not in res.stderr and len(res.stderr.splitlines()) <= 1, res.stderr
        return res

    def assert_untouched(self) -> None:
        assert self.victim.read_bytes().startswith(VICTIM)
        now = self.outside()
        now.pop(str(self.d.home / "sock"), None)     # the restored program's own socket
        self.before.pop(str(self.d.home / "sock"), None)
        assert sorted(set(now) - set(self.before)) == [], "created outside the image dir"
        changed = [p for p in self.before if p in now and now[p][:2] != self.before[p][:2]]
        assert changed == [], "changed outside the image dir"


@pytest.fixture
def scene(files_dump: Dumped, tmp_path: Path) -> Scene:
    s = Scene(files_dump, tmp_path)
    yield s
    (files_dump.home / "sock").unlink(missing_ok=True)


def test_area_open_mode_cannot_truncate(scene: Scene) -> None:
    """fmode O_RDWR|O_CREAT|O_TRUNC on an area naming the victim."""
    def crafted(entries: list[Any]) -> None:
        v = scene.vma(entries)
        v.path = str(scene.victim)
        v.fmode = os.O_RDWR | os.O_CREAT | os.O_TRUNC
    edit(scene.images, "mm", crafted, id=scene.d.pid)
    scene.restore()
    scene.assert_untouched()


def test_area_open_mode_cannot_create(scene: Scene) -> None:
    target = scene.tmp / "created-by-area"
    def crafted(entries: list[Any]) -> None:
        v = scene.vma(entries)
        v.path = str(target)
        v.fmode = os.O_RDWR | os.O_CREAT
    edit(scene.images, "mm", crafted, id=scene.d.pid)
    res = scene.restore()
    assert res.returncode == 1
    assert not target.exists()
    scene.assert_untouched()


def test_relative_area_path(scene: Scene) -> None:
    """../../../pwned against refcr's cwd (with O_CREAT in the mode)."""
    def crafted(entries: list[Any]) -> None:
        v = scene.vma(entries)
        v.path = "../../../pwned"
        v.fmode = os.O_RDWR | os.O_CREAT
    edit(scene.images, "mm", crafted, id=scene.d.pid)
    res = scene.restore()
    assert res.returncode == 1
    assert not (scene.tmp / "pwned").exists()
    scene.assert_untouched()


def test_relative_exe_path(scene: Scene) -> None:
    """An exe_path relative to refcr's cwd is refused, even naming a real program."""
    shutil.copy(scene.d.binary, scene.tmp / "other-exe")
    scene.before = scene.outside()
    edit(scene.images, "mm", lambda es: setattr(es[0], "exe_path", "../../../other-exe"), id=scene.d.pid)
    res = scene.restore()
    assert res.returncode == 1 and "exe_path" in res.stderr
    scene.assert_untouched()


def test_relative_regular_file(scene: Scene) -> None:
    """A regular file named relative to refcr's cwd is refused, not opened."""
    def crafted(entries: list[Any]) -> None:
        for e in entries:
            if e.WhichOneof("file") == "reg" and e.reg.path.endswith("/data"):
                e.reg.path = "../../../victim"
                e.reg.flags = os.O_RDWR | os.O_TRUNC | os.O_CREAT
    edit(scene.images, "files", crafted)
    res = scene.restore()
    assert res.returncode == 1
    scene.assert_untouched()


def test_pages_not_written_into_a_shared_file(scene: Scene) -> None:
    """A pagemap run over a shared file mapping would make refcr write the
    image's bytes into the host file behind it."""
    scene.victim.write_bytes(VICTIM * 256)
    scene.before = scene.outside()
    mm: list[Any] = []
    edit(scene.images, "mm", lambda es: mm.extend(es), id=scene.d.pid)
    area = scene.vma(mm)
    def shared_victim(entries: list[Any]) -> None:
        scene.vma(entries).path = str(scene.victim)
    edit(scene.images, "mm", shared_victim, id=scene.d.pid)
    pid = scene.d.pid
    with ImageDir(str(scene.images), "r") as d:
        head, runs = d.read_head("pagemap", id=pid)
        at = sum(1 for r in runs if r.vaddr < area.start)
        before = sum(r.nr_pages for r in runs[:at] if not r.in_parent) * PAGE
        runs.insert(at, pagemap_pb2.PagemapEntry(vaddr=area.start, nr_pages=1))
        head.pages_written += 1
        os.unlink(d.file_path("pagemap", id=pid))
        d.write("pagemap", runs, id=pid, head=head)
        pages = Path(d.file_path("pages", id=head.pages_id))
    data = pages.read_bytes()
    pages.write_bytes(data[:before] + b"X" * PAGE + data[before:])
    scene.restore()
    assert scene.victim.read_bytes() == VICTIM * 256
    scene.assert_untouched()


@pytest.mark.parametrize("where", ["victim", "../../../ghost", "dir-of-victim"])
def test_mapped_ghost_stays_a_ghost(scene: Scene, where: str) -> None:
    """The deleted file the program maps (a ghost, vma.file_id) named after
    the victim, relative to refcr's cwd, or inside a directory that is a
    symlink out: the victim keeps its contents and inode, nothing is left."""
    (scene.tmp / "link").symlink_to(scene.tmp)
    scene.before = scene.outside()
    path = {"victim": str(scene.victim), "../../../ghost": "../../../ghost",
            "dir-of-victim": str(scene.tmp / "link" / "victim")}[where]
    def ghost(entries: list[Any]) -> None:
        for e in entries:
            if e.WhichOneof("file") == "ghost":
                e.ghost.path = path
    def area(entries: list[Any]) -> None:
        for v in entries[0].vmas:
            if v.file_id:
                v.path = path
    edit(scene.images, "files", ghost)
    edit(scene.images, "mm", area, id=scene.d.pid)
    res = scene.restore()
    assert res.returncode in (0, 1)
    assert not (scene.tmp / "ghost").exists()
    scene.assert_untouched()


def _socket(entries: list[Any]) -> Any:
    return next(e.unix_sk for e in entries if e.WhichOneof("file") == "unix_sk")


def test_relative_socket_name(scene: Scene) -> None:
    """A socket name relative to refcr's cwd (no bind dir) is not bound there."""
    def crafted(entries: list[Any]) -> None:
        sk = _socket(entries)
        sk.name = b"../../../pwned.sock"
        sk.bind_dir = ""
    edit(scene.images, "files", crafted)
    res = scene.restore()
    assert res.returncode == 1
    assert not (scene.tmp / "pwned.sock").exists()
    scene.assert_untouched()


def test_socket_name_with_newline(scene: Scene) -> None:
    target = scene.tmp / "evil\nname.sock"
    edit(scene.images, "files", lambda es: setattr(_socket(es), "name", os.fsencode(str(target))))
    res = scene.restore()
    assert res.returncode == 1
    assert "\n" not in res.stderr.rstrip("\n"), "control characters are escaped"
    assert not target.exists()
    scene.assert_untouched()


def test_socket_removed_after_failed_restore(scene: Scene) -> None:
    """A socket bound at an absolute path is removed again when the restore fails."""
    target = scene.tmp / "elsewhere.sock"
    edit(scene.images, "files", lambda es: setattr(_socket(es), "name", os.fsencode(str(target))))
    res = scene.restore(fault="restore-before-detach")
    assert res.returncode == 1 and "restore-before-detach" in res.stderr
    assert not target.exists()
    scene.assert_untouched()


def test_untouched_restore_works(scene: Scene) -> None:
    """The unedited images restore (the tests above are not refused for another reason)."""
    res = scene.restore()
    assert res.returncode == 0, res.stderr
    scene.assert_untouched()


@pytest.fixture(scope="module")
def userns_dump(tmp_path_factory: pytest.TempPathFactory) -> Dumped:
    return dump_program("userns", tmp_path_factory.mktemp("containment-userns"))


def test_unwritable_tmpdir_is_one_line(userns_dump: Dumped, tmp_path: Path) -> None:
    """A tree with a mount namespace is staged in $TMPDIR: one that cannot be
    written is named in one line (the fuzzer's read-only host once gave an
    internal error), and nothing of the tree is left."""
    images = copy_images(userns_dump, tmp_path / "img")
    err = tmp_path / "stderr"
    pid = os.fork()
    if pid == 0:                                        # pragma: no cover (child)
        rc = 3
        try:
            os.setsid()
            os.dup2(os.open(str(err), os.O_WRONLY | os.O_CREAT, 0o600), 2)
            sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # not pytest's
            fuzz.sandbox(tmp_path)                      # the host read-only, tmp_path not
            tempfile.tempdir = "/var/tmp"               # read-only now
            os.chdir(tmp_path)
            rc = cli.main(["restore", "-D", str(images), "-d", "-o", "restore.log"])
        finally:
            os._exit(rc)
    _, status = os.waitpid(pid, 0)
    stderr = err.read_text()
    assert os.waitstatus_to_exitcode(status) == 1, stderr
    assert "staging directory in /var/tmp: Read-only file system" in stderr, stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert _running(userns_dump.binary) == []


def _running(binary: Path) -> list[int]:
    """Processes whose executable is binary (a restored tree left alive)."""
    out = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.readlink(f"/proc/{entry}/exe") == str(binary):
                out.append(int(entry))
        except OSError:
            pass
    return out


def test_tree_dead_at_once_is_no_internal_error(userns_dump: Dumped, tmp_path: Path) -> None:
    """A restored task that crashes on its first instruction (here: a bad
    instruction pointer) takes its network namespace with it before refcr
    unlocks it: the restore still ends in 0 or one line (the fuzzer's new
    program once got an internal error from the vanished /proc/PID/ns/net)."""
    images = copy_images(userns_dump, tmp_path / "img")
    edit(images, "core", lambda es: setattr(es[0].threads[0].regs, "rip", 1), id=1)
    (tmp_path / "tmp").mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for _ in range(6):          # the crash races refcr's unlock
        rc, stderr, _ = fuzz.run_restore(images, tmp_path, cwd)
        fuzz._reap_all(kill=True)
        assert rc in (0, 1) and "internal error" not in stderr and len(stderr.splitlines()) <= 1, stderr
