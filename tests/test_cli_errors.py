"""Command lines refused with one line and exit 1 (never exit 2, never silently
accepted), checked before anything is frozen or restored."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Processes, assert_one_line_error

from refcr.images.imagedir import INCOMPLETE_MARKER

TIMEOUT = 120
LIBM = next((p for p in ("/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libm.so.6")
             if os.path.exists(p)), None)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REFCR_FAULT", "REFCR_KILL_AT", "CRIU_LIBS_DIR")}
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT)


def refused(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 1, f"exit {res.returncode}: {res.stderr}"
    assert_one_line_error(res)
    for w in words:
        assert w in res.stderr, res.stderr


@pytest.fixture
def sleeper(processes: Processes, tmp_path: Path) -> int:
    p = processes.spawn(["sleep", "1000"], tmp_path)
    time.sleep(0.1)
    return p.pid


@pytest.fixture
def images(sleeper: int, tmp_path: Path, processes: Processes) -> Path:
    """A complete dump of a sleeper (left running: its pid stays busy, nothing restores by accident)."""
    res = run("dump", "-t", str(sleeper), "-D", str(tmp_path / "img"), "-R", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return tmp_path / "img"


def mount_tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "refcr-test", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def ro_mount(tmp_path: Path) -> Iterator[Path]:
    yield from mount_tmpfs(tmp_path / "ro", "ro,size=1m")


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    yield from mount_tmpfs(tmp_path / "small", "size=256k")


def test_dump_of_pid_1(tmp_path: Path) -> None:
    refused(run("dump", "-t", "1", "-D", str(tmp_path / "img"), cwd=tmp_path), "process 1")


def test_log_in_missing_directory(tmp_path: Path, sleeper: int) -> None:
    res = run("dump", "-t", str(sleeper), "-D", str(tmp_path / "img"), "-o", "/nonexistent/dir/log", cwd=tmp_path)
    refused(res, "/nonexistent/dir/log")


def test_log_is_a_directory(tmp_path: Path, sleeper: int) -> None:
    refused(run("dump", "-t", str(sleeper), "-D", str(tmp_path / "img"), "-o", str(tmp_path), cwd=tmp_path),
            "Is a directory")


def test_images_on_read_only_mount(tmp_path: Path, sleeper: int, ro_mount: Path) -> None:
    refused(run("dump", "-t", str(sleeper), "-D", str(ro_mount / "img"), cwd=tmp_path), "Read-only")
    assert os.path.exists(f"/proc/{sleeper}") and "SigBlk:\t0000000000000000" in \
        Path(f"/proc/{sleeper}/status").read_text()


def test_pidfile_in_missing_directory_restores_nothing(tmp_path: Path, processes: Processes) -> None:
    p = processes.spawn(["sleep", "1000"], tmp_path)
    time.sleep(0.1)
    assert run("dump", "-t", str(p.pid), "-D", str(tmp_path / "img"), cwd=tmp_path).returncode == 0
    p.wait(timeout=10)
    res = run("restore", "-D", str(tmp_path / "img"), "-d", "--pidfile", "/nonexistent/dir/pid", cwd=tmp_path)
    refused(res, "--pidfile")
    assert not os.path.exists(f"/proc/{p.pid}"), "the process was restored although the pidfile cannot be written"


def test_inherit_fd_number_out_of_range(tmp_path: Path, images: Path) -> None:
    res = run("restore", "-D", str(images), "-d", "--inherit-fd", "fd[99999999999999999999]:pipe:[1]", cwd=tmp_path)
    refused(res, "--inherit-fd")


@pytest.mark.parametrize("ext", ["bogus", "", "mnt[x]:", "dev[x]", "unix[1]"])
def test_restore_external_is_checked(tmp_path: Path, images: Path, ext: str) -> None:
    refused(run("restore", "-D", str(images), "-d", "--external", ext, cwd=tmp_path))


def test_libdir_with_an_ordinary_library(tmp_path: Path, sleeper: int) -> None:
    if LIBM is None:
        pytest.fail("no libm.so.6 on this system to copy")
    libdir = tmp_path / "lib"
    libdir.mkdir()
    shutil.copy(LIBM, libdir / "libm.so")
    res = run("dump", "-t", str(sleeper), "-D", str(tmp_path / "img"), "-R", "-L", str(libdir), cwd=tmp_path)
    refused(res, str(libdir / "libm.so"), "not a CRIU plugin")


def test_empty_libdir_is_a_warning(tmp_path: Path, sleeper: int) -> None:
    """CRIU loads nothing from an empty plugin directory and says nothing;
    refcr does the same but warns, since -L was asked for."""
    libdir = tmp_path / "lib"
    libdir.mkdir()
    res = run("dump", "-t", str(sleeper), "-D", str(tmp_path / "img"), "-R", "-L", str(libdir),
              "-o", "log", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "no plugin" in (tmp_path / "img" / "log").read_text()


def test_enospc_names_the_failed_write(tmp_path: Path, processes: Processes, small_mount: Path) -> None:
    prog = "import time\nb = bytearray(2 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\ntime.sleep(1000)\n"
    p = processes.spawn([sys.executable, "-c", prog], tmp_path)
    time.sleep(1)
    before = Path(f"/proc/{p.pid}/maps").read_text()
    res = run("dump", "-t", str(p.pid), "-D", str(small_mount / "img"), cwd=tmp_path)
    refused(res, "No space left", "pages-")
    assert "INCOMPLETE" not in res.stderr, "the error names the marker, not the write that failed"
    assert (small_mount / "img" / INCOMPLETE_MARKER).exists()
    assert Path(f"/proc/{p.pid}/maps").read_text() == before
