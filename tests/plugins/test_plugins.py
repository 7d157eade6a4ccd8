"""Plugins (refcr/plugins/host.py) on real processes: `refcr dump/restore -L DIR`.

The scenarios of the plugin issue, as pytest tests rather than zdtm .desc
files: each starts `sleep` holding an extra fd, dumps it with a plugin
directory made for the test, restores it, and looks at the result.  The
plugins are variants of tests/plugins/src/testplug.c (and plugins/trivial),
compiled per test session.  The "device refcr does not know" is a regular
file named with `--external file[PATH]` (a "fake device" a test can open),
or /dev/kmsg, which no file kind claims.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import Processes, assert_one_line_error

from zdtm.harness import procs

REPO = Path(__file__).resolve().parents[2]
INCLUDE = REPO / "native" / "include"
SRC = Path(__file__).resolve().parent / "src" / "testplug.c"

VARIANTS: dict[str, list[str]] = {
    "decline": ['-DPLUGIN_NAME="decline"'],
    "old-handler": ['-DPLUGIN_NAME="oldhandler"', "-DOLD_STYLE", "-DHANDLE"],
    "handler": ['-DPLUGIN_NAME="handler"', "-DHANDLE"],
    "kmsg": ['-DPLUGIN_NAME="kmsg"', "-DHANDLE", '-DCLAIM="/dev/kmsg"'],
    "init-fail": ['-DPLUGIN_NAME="initfail"', "-DINIT_FAIL"],
    "crash": ['-DPLUGIN_NAME="crash"', "-DCRASH_DUMP"],
    "hang": ['-DPLUGIN_NAME="hang"', "-DHANG_DUMP"],
    "bad-version": ['-DPLUGIN_NAME="badversion"', "-DBAD_VERSION"],
    "bad-max-hooks": ['-DPLUGIN_NAME="badmaxhooks"', "-DBAD_MAX_HOOKS"],
    "device-vma": ['-DPLUGIN_NAME="devicevma"', "-DDEVICE_VMA"],
    "vma-map": ['-DPLUGIN_NAME="vmamap"', "-DVMA_MAP"],
    "dir-a": ['-DPLUGIN_NAME="dir-a"'],
    "dir-b": ['-DPLUGIN_NAME="dir-b"'],
    "dir-c": ['-DPLUGIN_NAME="dir-c"'],
    # broken on purpose, each for one check of `refcr plugin-check`
    "leak-fd": ['-DPLUGIN_NAME="leakfd"', "-DLEAK_FD"],
    "chdir": ['-DPLUGIN_NAME="chdir"', "-DCHDIR"],
    "umask": ['-DPLUGIN_NAME="umask"', "-DUMASK"],
    "greedy": ['-DPLUGIN_NAME="greedy"', "-DGREEDY"],
    "write-outside": ['-DPLUGIN_NAME="writeoutside"', "-DWRITE_OUTSIDE"],
    "exit-crash": ['-DPLUGIN_NAME="exitcrash"', "-DEXIT_CRASH"],
    "unresolved": ['-DPLUGIN_NAME="unresolved"', "-DUNRESOLVED"],
    "same-id": ['-DPLUGIN_NAME="sameid"', "-DSAME_ID"],
    "name-clash": ['-DPLUGIN_NAME="trivial"'],
    "lose-flags": ['-DPLUGIN_NAME="loseflags"', "-DHANDLE", '-DCLAIM="/dev/kmsg"', "-DLOSE_FLAGS"],
}
SCENARIO = SRC.parent / "kmsg_scenario.c"


def compile_plugin(src: Path, out: Path, flags: list[str]) -> Path:
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-fPIC", "-shared",
                    f"-I{INCLUDE}", *flags, "-o", str(out), str(src)], check=True)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("plugins-built")
    out = {name: compile_plugin(SRC, d / f"{name}.so", flags) for name, flags in VARIANTS.items()}
    out["trivial"] = compile_plugin(REPO / "plugins" / "trivial" / "trivial.c", d / "trivial.so", [])
    out["criu-rtc"] = compile_plugin(REPO / "plugins" / "criu-rtc" / "criu-rtc.c", d / "criu-rtc.so", [])
    out["unix-sk"] = compile_plugin(REPO / "plugins" / "unix-sk" / "unix-sk.c", d / "unix-sk.so", [])
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-o", str(d / "mapper"), str(SRC.parent / "mapper.c")],
                   check=True)
    out["mapper"] = d / "mapper"
    return out


def plugin_dir(path: Path, built: dict[str, Path], *names: str) -> Path:
    """A plugin directory holding the given plugins as NN-name.so, in this order."""
    path.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (path / f"{10 * (i + 1)}-{name}.so").symlink_to(built[name])
    return path


def refcr(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.pop("CRIU_LIBS_DIR", None)
    e["REFCR_PLUGIN_DEFAULT_DIR"] = str(cwd / "no-default-dir")
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=cwd, env=e, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=120)


class Target:
    """`sleep 1000` in its own session, holding `path` open at fd `fd` (offset `pos`)."""

    def __init__(self, processes: Processes, path: str, flags: int = os.O_RDWR, pos: int = 0) -> None:
        fd = os.open(path, flags)
        if pos:
            os.lseek(fd, pos, os.SEEK_SET)
        self.popen = subprocess.Popen(["sleep", "1000"], pass_fds=(fd,), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        os.close(fd)
        processes.pids.add(self.popen.pid)
        self.pid, self.fd, self.path, self.pos = self.popen.pid, fd, path, pos

    def fd_state(self) -> tuple[str, int]:
        link = os.readlink(f"/proc/{self.pid}/fd/{self.fd}")
        info = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/fdinfo/{self.fd}").read_text().splitlines())
        return link, int(info["pos"])

    def assert_running_untouched(self) -> None:
        """Alive, not stopped, not traced, fd as it was."""
        status = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines())
        assert status["State"].split()[0] in ("S", "R"), status["State"]
        assert status["TracerPid"].strip() == "0"
        assert self.fd_state() == (self.path, self.pos)


def fake_device(tmp_path: Path) -> str:
    path = tmp_path / "widget.fakedev"
    path.write_bytes(b"0123456789abcdef")
    return str(path)


def log_lines(path: Path, needle: str) -> list[str]:
    return [line for line in path.read_text().splitlines() if needle in line]


def dump_restore(tmp_path: Path, t: Target, libdir: Path, *extra: str) -> None:
    res = refcr("dump", "-t", str(t.pid), "-D", "img", "-L", str(libdir), "-o", "dump.log", "-v4",
                *extra, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    t.popen.wait(timeout=10)
    res = refcr("restore", "-D", "img", "-L", str(libdir), "-o", "restore.log", "-v4", "-d", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert procs.is_alive(t.pid)


# ------------------------------------------------ both APIs, chain order ---

@pytest.mark.parametrize("order", [("decline", "old-handler", "trivial"), ("handler", "decline", "trivial")],
                         ids=["plugin_old_style", "plugin_v2"])
def test_chain(tmp_path: Path, processes: Processes, built: dict[str, Path], order: tuple[str, ...]) -> None:
    """plugin_old_style / plugin_v2: v2 and old-style plugins load together;
    DUMP_EXT_FILE goes down the chain in file name order until one answers
    something other than -ENOTSUP; the entry names that plugin, and only its
    RESTORE_EXT_FILE is asked on restore.  The fd comes back at its offset."""
    libdir = plugin_dir(tmp_path / "lib", built, *order)
    t = Target(processes, fake_device(tmp_path), pos=5)
    dump_restore(tmp_path, t, libdir, "--external", f"file[{t.path}]")
    assert t.fd_state() == (t.path, 5)

    handler = "handler" if order[0] == "handler" else "20-old-handler.so"
    dump_log, restore_log = tmp_path / "img" / "dump.log", tmp_path / "img" / "restore.log"
    asked = [line.split("I: ")[1].split(":")[0] for line in log_lines(dump_log, "dump_ext_file(")]
    assert asked == (["decline", "oldhandler"] if order[0] == "decline" else ["handler"])
    assert log_lines(dump_log, "old-style plugin") != [] if order[0] == "decline" else True
    assert not log_lines(restore_log, "decline: restore_ext_file")   # only the dumper is asked
    assert len(log_lines(restore_log, "restore_ext_file(id")) == 1
    for log in (dump_log, restore_log):                                  # exit always, with the result
        assert len(log_lines(log, "trivial: exit(stage")) == 1
        assert log_lines(log, "trivial: exit(stage")[0].endswith("ret 0)")

    from refcr.images.imagedir import ImageDir
    with ImageDir(str(tmp_path / "img")) as images:
        [entry] = [e for e in images.read("files") if e.WhichOneof("file") == "plugin"]
        assert (entry.plugin.plugin, entry.plugin.id, entry.plugin.path) == (handler, entry.id, t.path)
        assert list(images.read_single("inventory").plugins) == [handler]


def test_unknown_device_goes_to_plugins(tmp_path: Path, processes: Processes, built: dict[str, Path]) -> None:
    """An fd no file kind claims (/dev/kmsg) is offered to DUMP_EXT_FILE without any option."""
    t = Target(processes, "/dev/kmsg", flags=os.O_RDONLY)
    res = refcr("dump", "-t", str(t.pid), "-D", "img0", "-R", cwd=tmp_path)    # no plugins: refused
    assert_one_line_error(res)
    assert "/dev/kmsg" in res.stderr and "no plugin" in res.stderr
    t.assert_running_untouched()
    dump_restore(tmp_path, t, plugin_dir(tmp_path / "lib", built, "trivial", "kmsg"))
    assert t.fd_state()[0] == "/dev/kmsg"


def test_nobody_takes_it(tmp_path: Path, processes: Processes, built: dict[str, Path]) -> None:
    """Every plugin declines: the dump fails naming the fd, the task runs on."""
    t = Target(processes, fake_device(tmp_path), pos=3)
    libdir = plugin_dir(tmp_path / "lib", built, "decline", "trivial")
    res = refcr("dump", "-t", str(t.pid), "-D", "img", "-L", str(libdir), "--external", f"file[{t.path}]",
                cwd=tmp_path)
    assert_one_line_error(res)
    assert t.path in res.stderr and "decline, trivial declined" in res.stderr
    t.assert_running_untouched()
    assert (tmp_path / "img" / "INCOMPLETE").exists()


def test_plugin_missing_on_restore(tmp_path: Path, processes: Processes, built: dict[str, Path]) -> None:
    t = Target(processes, fake_device(tmp_path))
    res = refcr("dump", "-t", str(t.pid), "-D", "img", "-L", str(plugin_dir(tmp_path / "lib", built, "handler")),
                "--external", f"file[{t.path}]", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    t.popen.wait(timeout=10)
    for libdir in (plugin_dir(tmp_path / "other", built, "decline"), None):
        args = ["-L", str(libdir)] if libdir else []
        res = refcr("restore", "-D", "img", "-d", *args, cwd=tmp_path)
        assert_one_line_error(res)
        assert "plugin(s) handler" in res.stderr and "not loaded" in res.stderr
        assert not procs.is_alive(t.pid)


# ------------------------------------------------------ failing plugins ---

def test_plugin_init_fails(tmp_path: Path, processes: Processes, built: dict[str, Path]) -> None:
    """init() failing fails the run before anything is frozen; plugins whose
    init succeeded get exit(stage, -1)."""
    t = Target(processes, fake_device(tmp_path), pos=7)
    libdir = plugin_dir(tmp_path / "lib", built, "trivial", "init-fail", "decline")
    res = refcr("dump", "-t", str(t.pid), "-D", "img", "-L", str(libdir), "-o", str(tmp_path / "dump.log"),
                "-v4", cwd=tmp_path)
    assert_one_line_error(res)
    assert "plugin initfail: init(dump) failed" in res.stderr
    t.assert_running_untouched()
    log = tmp_path / "dump.log"
    assert log_lines(log, "trivial: exit(stage 0, ret -1)")
    assert not log_lines(log, "decline: init")              # never reached
    assert (tmp_path / "img" / "INCOMPLETE").exists()


@pytest.mark.parametrize("variant,what", [("crash", "crashed in DUMP_EXT_FILE (SIGSEGV)"),
                                          ("hang", "did not answer DUMP_EXT_FILE within 2s")])
def test_plugin_crash_on_dump(tmp_path: Path, processes: Processes, built: dict[str, Path],
                              variant: str, what: str) -> None:
    """plugin_crash_on_dump: a plugin segfaults (or hangs) inside DUMP_EXT_FILE
    while the target is frozen: the dump fails cleanly, the target runs on
    intact, and the other plugins still get exit(DUMP, -1)."""
    t = Target(processes, fake_device(tmp_path), pos=2)
    libdir = plugin_dir(tmp_path / "lib", built, "decline", variant, "trivial")
    res = refcr("dump", "-t", str(t.pid), "-D", "img", "-L", str(libdir), "-o", str(tmp_path / "dump.log"),
                "-v4", "--external", f"file[{t.path}]", cwd=tmp_path, env={"REFCR_PLUGIN_TIMEOUT": "2"})
    assert_one_line_error(res)
    assert what in res.stderr and "process resumed" in res.stderr
    t.assert_running_untouched()
    log = tmp_path / "dump.log"
    assert log_lines(log, "trivial: exit(stage 0, ret -1)") and log_lines(log, "decline: exit(stage 0, ret -1)")
    # and it can still be dumped and restored, without the broken plugin
    (tmp_path / "img2").mkdir()
    dump_restore(tmp_path / "img2", t, plugin_dir(tmp_path / "lib2", built, "handler"),
                 "--external", f"file[{t.path}]")
    assert t.fd_state() == (t.path, 2)


@pytest.mark.parametrize("variant,what", [("bad-version", "newer than 0x200"),
                                          ("bad-max-hooks", "declares 20 hooks, refcr knows 15")])
def test_descriptor_refused(tmp_path: Path, processes: Processes, built: dict[str, Path],
                            variant: str, what: str) -> None:
    t = Target(processes, fake_device(tmp_path))
    res = refcr("dump", "-t", str(t.pid), "-D", "img", "-L", str(plugin_dir(tmp_path / "lib", built, variant)),
                cwd=tmp_path)
    assert_one_line_error(res)
    assert what in res.stderr
    t.assert_running_untouched()


# ------------------------------------------------- device and file maps ---

class Mapper:
    """tests/plugins/src/mapper: a process with one read-only mapping of `path`."""

    def __init__(self, processes: Processes, built: dict[str, Path], path: str, offset: int, length: int,
                 how: str, touch: bool = False) -> None:
        argv = [str(built["mapper"]), path, str(offset), str(length), how] + (["touch"] if touch else [])
        self.popen = processes.spawn(argv, Path("/"))
        self.pid, self.path = self.popen.pid, path
        for _ in range(500):
            if self.mapping(path):
                return
            assert self.popen.poll() is None, "mapper failed"
            time.sleep(0.01)
        raise AssertionError("mapper did not map")

    def mapping(self, path: str) -> tuple[int, int, str, int] | None:
        """(start, end, perms, offset) of the mapping of `path`."""
        for line in Path(f"/proc/{self.pid}/maps").read_text().splitlines():
            f = line.split()
            if len(f) >= 6 and f[5] == path:
                a, b = (int(x, 16) for x in f[0].split("-"))
                return a, b, f[1], int(f[2], 16)
        return None

    def read(self, addr: int, n: int) -> bytes:
        with open(f"/proc/{self.pid}/mem", "rb") as f:
            f.seek(addr)
            return f.read(n)


def test_device_vma(tmp_path: Path, processes: Processes, built: dict[str, Path]) -> None:
    """HANDLE_DEVICE_VMA: a mapping of a block device (an unbound loop device)
    is no file refcr dumps itself; without a plugin taking it the dump fails
    naming the mapping and the task runs on; with one (behind a declining
    one) the dump records it, and restore maps the device again."""
    dev = "/dev/loop7"
    if not os.path.exists(dev):     # the loop driver is built in; only the node may be missing
        dev = str(tmp_path / "loop7")
        os.mknod(dev, stat.S_IFBLK | 0o600, os.makedev(7, 7))
    m = Mapper(processes, built, dev, 0, 8192, "shared")
    before = m.mapping(dev)
    res = refcr("dump", "-t", str(m.pid), "-D", "img0", "-L", str(plugin_dir(tmp_path / "lib0", built, "trivial")),
                cwd=tmp_path)
    assert_one_line_error(res)
    assert f"mapping {before[0]:x}-{before[1]:x} of device {dev} (7:7)" in res.stderr
    assert "trivial declined" in res.stderr
    assert m.mapping(dev) == before and procs.is_alive(m.pid)
    assert (tmp_path / "img0" / "INCOMPLETE").exists()

    libdir = plugin_dir(tmp_path / "lib", built, "trivial", "device-vma")
    res = refcr("dump", "-t", str(m.pid), "-D", "img", "-L", str(libdir), "-o", "dump.log", "-v4", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    m.popen.wait(timeout=10)
    from refcr.images.imagedir import ImageDir
    with ImageDir(str(tmp_path / "img")) as images:
        [vma] = [v for v in images.read_single("mm", id=m.pid).vmas if v.path == dev]
        assert vma.plugin == "devicevma"
        assert list(images.read_single("inventory").plugins) == ["devicevma"]
    assert log_lines(tmp_path / "img" / "dump.log", "rdev 0x707")       # trivial was asked first
    res = refcr("restore", "-D", "img", "-L", str(libdir), "-d", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert procs.is_alive(m.pid) and m.mapping(dev) == before
    res = refcr("restore", "-D", "img", "-d", cwd=tmp_path)       # the plugin is needed
    assert_one_line_error(res)
    assert "plugin(s) devicevma" in res.stderr


@pytest.mark.parametrize("how", ["shared", "private"])
def test_update_vma_map(tmp_path: Path, processes: Processes, built: dict[str, Path], how: str) -> None:
    """UPDATE_VMA_MAP: asked for every file mapping on restore; where it answers
    1 the area maps the plugin's fd at the plugin's offset (here: PATH.new at
    0 instead of PATH at one page), elsewhere the file is opened as usual."""
    path = tmp_path / "widget.fakedev"
    path.write_bytes(b"A" * 4096 + b"B" * 4096)
    (tmp_path / "widget.fakedev.new").write_bytes(b"N" * 8192)
    other = tmp_path / "plain"
    other.write_bytes(b"P" * 4096)
    m = Mapper(processes, built, str(path), 4096, 4096, how, touch=True)
    start = m.mapping(str(path))[0]
    assert m.read(start, 4) == b"BBBB"
    libdir = plugin_dir(tmp_path / "lib", built, "decline", "vma-map")
    res = refcr("dump", "-t", str(m.pid), "-D", "img", "-L", str(libdir), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    m.popen.wait(timeout=10)
    res = refcr("restore", "-D", "img", "-L", str(libdir), "-o", "restore.log", "-v4", "-d", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert m.mapping(str(path)) is None
    got = m.mapping(str(tmp_path / "widget.fakedev.new"))
    assert got is not None and got[0] == start and got[3] == 0
    assert m.read(start, 4) == b"NNNN"
    asked = log_lines(tmp_path / "img" / "restore.log", "vmamap: update_vma_map(")
    assert any(f"update_vma_map({path}, {start:#x}, 0x1000)" in line for line in asked)
    assert any("/mapper," in line for line in asked)          # every file mapping is offered


# ---------------------------------------------------------- directories ---

def test_plugin_libdir_precedence(tmp_path: Path, processes: Processes, built: dict[str, Path]) -> None:
    """-L over $CRIU_LIBS_DIR over the default directory (if it exists)."""
    a = plugin_dir(tmp_path / "a", built, "dir-a")
    b = plugin_dir(tmp_path / "b", built, "dir-b")
    c = plugin_dir(tmp_path / "c", built, "dir-c")
    t = Target(processes, fake_device(tmp_path))
    cases = [(["-L", str(a)], {"CRIU_LIBS_DIR": str(b), "REFCR_PLUGIN_DEFAULT_DIR": str(c)}, "dir-a"),
             ([], {"CRIU_LIBS_DIR": str(b), "REFCR_PLUGIN_DEFAULT_DIR": str(c)}, "dir-b"),
             ([], {"REFCR_PLUGIN_DEFAULT_DIR": str(c)}, "dir-c"),
             ([], {"REFCR_PLUGIN_DEFAULT_DIR": str(tmp_path / "missing")}, None)]
    for i, (args, env, expect) in enumerate(cases):
        res = refcr("dump", "-t", str(t.pid), "-D", f"img{i}", "-R", "-o", "dump.log", "-v4", *args,
                    cwd=tmp_path, env=env)
        assert res.returncode == 0, res.stderr
        inits = [line.split("I: ")[1].split(":")[0] for line in log_lines(tmp_path / f"img{i}" / "dump.log",
                                                                          ": init(stage 0)")]
        assert inits == ([expect] if expect else [])
        t.assert_running_untouched()
    res = refcr("dump", "-t", str(t.pid), "-D", "imgx", "-R", "-L", str(tmp_path / "nope"), cwd=tmp_path)
    assert_one_line_error(res)
    assert "plugin directory" in res.stderr


# ------------------------------------------------ in-process: the API ---

@pytest.fixture
def session(tmp_path: Path, built: dict[str, Path]):
    """host.init/exit in this process, logging at -v4 into tmp_path/log."""
    from refcr import log as logmod
    from refcr.options import Options
    from refcr.plugins import host

    def start(*names: str, stage: int = host.STAGE_DUMP) -> None:
        opts = Options(images_dir=str(tmp_path / "img"), libdir=str(plugin_dir(tmp_path / "lib", built, *names)),
                       verbosity=4)
        (tmp_path / "img").mkdir(exist_ok=True)
        host.init(stage, opts)

    logmod.setup(4, str(tmp_path / "log"))
    yield start
    host.exit(host.STAGE_DUMP, 0)
    logmod.setup(2, None)


def test_unix_sk_and_device_hooks(session, tmp_path: Path) -> None:
    """The entry points other modules call: declined everywhere by trivial."""
    import socket

    from refcr.plugins import host
    session("trivial")
    a, b = socket.socketpair()
    assert host.dump_unix_sk(a.fileno(), 4) is False
    with pytest.raises(host.PluginError, match="no plugin restores it"):
        host.restore_unix_sk(4)
    host.devices_hook("PAUSE_DEVICES", [os.getpid()])
    host.stage_hook("POST_FORKING")
    assert host.used() == []
    a.close(), b.close()
    assert log_lines(tmp_path / "log", "trivial: dump_unix_sk(fd") and log_lines(tmp_path / "log", "post_forking()")


def test_criu_rtc(session, tmp_path: Path) -> None:
    """criu-rtc without /dev/rtc (this kernel has none): loads as an old-style
    plugin, declines what is no rtc, decodes its image on restore."""
    from refcr.plugins import host
    session("criu-rtc", stage=host.STAGE_RESTORE)
    assert host.names() == ["10-criu-rtc.so"]
    assert log_lines(tmp_path / "log", "old-style plugin")
    for path in ("/dev/null", str(tmp_path / "log")):
        fd = os.open(path, os.O_RDONLY)
        assert host.dump_ext_file(fd, 1) is None
        os.close(fd)
    img = tmp_path / "img"
    (img / "rtc.7").write_bytes(b"\x08\x80\x01")        # RtcEntry{irqp: 128}
    (img / "rtc.8").write_bytes(b"\x0a\x01")            # not an RtcEntry
    with pytest.raises(host.PluginError, match="failed"):
        host.restore_ext_file("10-criu-rtc.so", 7)   # no /dev/rtc here
    assert log_lines(tmp_path / "log", "id 7: restoring with rate 128 Hz")
    with pytest.raises(host.PluginError, match="Invalid argument"):
        host.restore_ext_file("10-criu-rtc.so", 8)
    with pytest.raises(host.PluginError, match="declined"):
        host.restore_ext_file("10-criu-rtc.so", 9)   # no rtc.9: not its object


# ------------------------------------------------------- plugin-check ---

@pytest.mark.parametrize("variant", ["trivial", "criu-rtc", "unix-sk", "decline", "handler", "old-handler", "kmsg"])
def test_plugin_check_passes(tmp_path: Path, built: dict[str, Path], variant: str) -> None:
    res = refcr("plugin-check", str(built[variant]), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "FAIL" not in res.stdout and res.stdout.startswith("CHECK")


@pytest.mark.parametrize("variant,check", [
    ("bad-version", "descriptor"), ("bad-max-hooks", "descriptor"), ("unresolved", "load"),
    ("leak-fd", "hygiene: fds"), ("chdir", "hygiene: cwd"), ("umask", "hygiene: umask"),
    ("greedy", "DUMP_EXT_FILE"), ("write-outside", "writes"),
    ("init-fail", "init/exit dump, init/exit pre-dump, init/exit restore"),
    ("exit-crash", "init/exit dump, init/exit pre-dump, init/exit restore"),
    ("same-id", "chain"), ("name-clash", "chain"), ("lose-flags", "scenario"),
])
def test_plugin_check_catches(tmp_path: Path, built: dict[str, Path], variant: str, check: str) -> None:
    """Each broken plugin fails exactly the check meant for it, and nothing else."""
    extra = {"name-clash": ["--with", str(built["trivial"])], "lose-flags": ["--scenario", str(SCENARIO)]}
    res = refcr("plugin-check", str(built[variant]), *extra.get(variant, []), cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.strip().endswith(f"check(s) failed: {check}"), res.stdout + res.stderr
    assert not list(tmp_path.glob("plugin-was-here"))     # the writer wrote into its sandbox, not here


def test_plugin_check_chain_and_scenario(tmp_path: Path, built: dict[str, Path]) -> None:
    """The chain (default partner and --with) and a full dump -> restore -> verify
    of the author's program with the plugin; the JUnit XML has every row."""
    import xml.etree.ElementTree as ET
    res = refcr("plugin-check", str(built["kmsg"]), "--scenario", str(SCENARIO), "--junit-xml", "out.xml",
                cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = {line.split()[0]: line for line in res.stdout.splitlines()[1:]}
    assert "plugin-check-partner.so, first and second" in rows["chain"]
    assert "kmsg_scenario.c: PASS after dump and restore; the images name it (kmsg)" in rows["scenario"]
    suite = ET.parse(tmp_path / "out.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) == len(suite.findall("testcase")) >= 8
    res = refcr("plugin-check", str(built["kmsg"]), "--with", str(built["decline"]), cwd=tmp_path)
    assert res.returncode == 0 and "with decline.so" in res.stdout


def test_plugin_check_junit_failure(tmp_path: Path, built: dict[str, Path]) -> None:
    import xml.etree.ElementTree as ET
    res = refcr("plugin-check", str(built["leak-fd"]), str(built["trivial"]), "--junit-xml", "out.xml", cwd=tmp_path)
    assert res.returncode == 1
    suites = ET.parse(tmp_path / "out.xml").getroot().findall("testsuite")
    assert [s.get("failures") for s in suites] == ["1", "0"]
    [failed] = [c for c in suites[0].findall("testcase") if c.find("failure") is not None]
    assert failed.get("name") == "hygiene: fds" and "DUMP_EXT_FILE changed it" in failed.find("failure").get("message")


@pytest.mark.parametrize("args,says", [(["--with", "nope.so"], "--with nope.so: no such file"),
                                       (["--scenario", "nope.c"], "--scenario nope.c: no such file"),
                                       (["--junit-xml", "/nonexistent/x.xml"], "--junit-xml /nonexistent/x.xml")])
def test_plugin_check_bad_options(tmp_path: Path, built: dict[str, Path], args: list[str], says: str) -> None:
    res = refcr("plugin-check", str(built["trivial"]), *args, cwd=tmp_path)
    assert_one_line_error(res)
    assert says in res.stderr


def test_plugin_check_as_pytest(built: dict[str, Path]) -> None:
    """conformance_tests(): the same rows as parametrized pytest cases."""
    from refcr.plugins.conformance import conformance_tests
    for variant, failing in (("trivial", []), ("umask", ["hygiene: umask"])):
        fn = conformance_tests(str(built[variant]))
        [mark] = [m for m in fn.pytestmark if m.name == "parametrize"]
        failed = []
        for row in mark.args[1]:
            try:
                fn(row)
            except AssertionError:
                failed.append(row[0])
        assert failed == failing


def test_plugin_cflags_builds_a_plugin(tmp_path: Path) -> None:
    res = refcr("plugin-cflags", cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.startswith("-I")
    flag = res.stdout.strip()
    assert (Path(flag[2:]) / "criu-plugin.h").exists() and (Path(flag[2:]) / "criu-log.h").exists()
    subprocess.run(["cc", "-fPIC", "-shared", flag, "-o", str(tmp_path / "t.so"),
                    str(REPO / "plugins" / "trivial" / "trivial.c")], check=True)
