"""`refcr plugin-check PATH.so`: does a plugin behave as refcr (and CRIU) expect?

Each check prints one row (check, ok/FAIL, detail); any FAIL makes the exit
status 1.  The plugin runs in plugin hosts exactly as in a real run
(refcr/plugins/host.py), with an empty working directory, an empty $TMPDIR and
a scratch image directory:

  load           it loads with every symbol bound now (RTLD_NOW): nothing
                 it needs is missing from refcr
  descriptor     API version and max_hooks within refcr's, a name
  init/exit      init(stage) returns 0 and exit(stage, 0) returns, for
                 dump, pre-dump and restore
  <HOOK>         every hook it implements, given objects that are not
                 its (unix socketpairs, a scratch file, a pipe, /dev/null,
                 an unknown id, a tmpfs mount, the loopback link ...),
                 answers -ENOTSUP so that the chain
                 goes on (device hooks given a pid may answer 0 too)
  hygiene        after each call: no fd left open, same cwd, same umask
  writes         nothing was created in its cwd or $TMPDIR (a plugin
                 writes into the image directory only)
  chain          loaded next to another plugin (--with, default a copy
                 of plugins/trivial, which declines everything), first and
                 second in the chain: names differ, every foreign object
                 asked twice falls through to the next plugin (-ENOTSUP;
                 device hooks given a pid may answer 0), exit(stage, -1)
                 of a failed run returns
  scenario       (--scenario prog.c) the author's zdtm-style program,
                 built against zdtm/lib (or zdtm/lib/criu, CRIU's test
                 library, for a test written for it), goes through a real dump ->
                 restore -> SIGTERM with the plugin as the only one in
                 the plugin directory, and prints PASS

Each row is also available as a pytest test: :func:`conformance_tests`.
--junit-xml FILE writes the rows as JUnit XML (one testsuite per plugin).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from refcr.errors import OptionError
from refcr.plugins import host
from refcr.plugins.host import ENOTSUP, HOOK, HOOKS, Plugin, PluginError

# A foreign object for each hook: (ints, strs, u64, needs an fd)
FOREIGN_ID = 424242
PID_HOOKS = {HOOK[h] for h in ("RESUME_DEVICES_LATE", "PAUSE_DEVICES", "CHECKPOINT_DEVICES",
                               "POST_FORKING", "RESTORE_INIT", "DUMP_DEVICES_LATE")}
RESTORE_HOOKS = {HOOK[h] for h in ("RESTORE_UNIX_SK", "RESTORE_EXT_FILE", "RESTORE_EXT_MOUNT",
                                   "UPDATE_VMA_MAP", "RESUME_DEVICES_LATE", "POST_FORKING", "RESTORE_INIT")}


@dataclass
class Report:
    rows: list[tuple[str, bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)         # printed under the table

    def add(self, check: str, ok: bool, detail: str = "") -> bool:
        self.rows.append((check, ok, detail))
        return ok

    @property
    def failed(self) -> list[str]:
        return [c for c, ok, _ in self.rows if not ok]

    def table(self) -> str:
        w = max([len("CHECK")] + [len(c) for c, _, _ in self.rows])
        lines = [f"{'CHECK':<{w}}  RESULT  DETAIL"]
        lines += [f"{c:<{w}}  {'ok' if ok else 'FAIL':<6}  {d}".rstrip() for c, ok, d in self.rows]
        return "\n".join(lines + self.notes)


class _Sandbox:
    """Scratch image directory, cwd and $TMPDIR for the plugin hosts."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="refcr-plugin-check-")
        self.root = self.tmp.name
        self.images, self.cwd, self.tmpdir, self.mnt = (os.path.join(self.root, n)
                                                        for n in ("img", "cwd", "tmp", "mnt"))
        for d in (self.images, self.cwd, self.tmpdir, self.mnt):
            os.mkdir(d)
        self.dirfd = os.open(self.images, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.file = os.path.join(self.root, "foreign-file")
        with open(self.file, "w") as f:
            f.write("not a plugin's business\n")

    def mount_tmpfs(self) -> None:
        """In a plugin host: a mount namespace of its own with a tmpfs on `mnt`, the
        foreign mount point (without the privilege for it, `mnt` stays a directory)."""
        from refcr.ns import mountapi
        from refcr.ptrace import native
        try:
            native.unshare(native.CLONE_NEWNS)
            mountapi.mount(None, "/", None, mountapi.MS_REC | mountapi.MS_PRIVATE)
            mountapi.mount("plugin-check", self.mnt, "tmpfs", 0)
        except OSError:
            pass

    def close(self) -> None:
        os.close(self.dirfd)
        self.tmp.cleanup()


def _spawn(path: str, stage: int, box: _Sandbox, level: int) -> Plugin:
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = box.tmpdir
    try:
        return Plugin.spawn(path, stage, box.dirfd, level, now=True, cwd=box.cwd, prepare=box.mount_tmpfs)
    finally:
        if old is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = old


def _hygiene(rep: Report, p: Plugin, before: dict, what: str) -> dict:
    after = p.probe()
    for key, label in (("fds", "fds"), ("cwd", "cwd"), ("umask", "umask")):
        if after[key] != before[key]:
            rep.add(f"hygiene: {label}", False, f"{what} changed it: {before[key]} -> {after[key]}")
    return after


# The objects fd hooks are given (none of them may be claimed).
FD_OBJECTS = {
    "DUMP_UNIX_SK": ("a unix stream socketpair", "a unix datagram socketpair"),
    "DUMP_EXT_FILE": ("a regular file", "a pipe", "/dev/null", "a unix stream socketpair"),
    "HANDLE_DEVICE_VMA": ("/dev/null", "a regular file"),
}


def _foreign_fds(label: str, box: _Sandbox) -> list[int]:
    """fds of a foreign object: the one to give first, then what keeps it alive."""
    if label.startswith("a unix"):
        kind = socket.SOCK_STREAM if "stream" in label else socket.SOCK_DGRAM
        return [s.detach() for s in socket.socketpair(socket.AF_UNIX, kind)]
    if label == "a pipe":
        return list(os.pipe2(os.O_CLOEXEC))
    return [os.open(box.file if label == "a regular file" else label, os.O_RDONLY | os.O_CLOEXEC)]


def _call_foreign(p: Plugin, hook: int, box: _Sandbox) -> dict:
    name = HOOKS[hook]
    if name in FD_OBJECTS:
        for i, label in enumerate(FD_OBJECTS[name]):    # each must be declined: the first answer that is not
            fds = _foreign_fds(label, box)
            try:
                reply, rfds = p.call(hook, [fds[0], FOREIGN_ID + i], fd=fds[0])
            finally:
                for fd in fds:
                    os.close(fd)
            for fd in rfds:
                os.close(fd)
            if reply["ret"] != -ENOTSUP:
                return dict(reply, object=label)
        return reply
    if name in ("RESTORE_UNIX_SK", "RESTORE_EXT_FILE", "DUMP_DEVICES_LATE"):
        return p.call(hook, [FOREIGN_ID])[0]
    if name == "DUMP_EXT_MOUNT":
        return p.call(hook, [FOREIGN_ID], [box.mnt])[0]
    if name == "RESTORE_EXT_MOUNT":
        return p.call(hook, [FOREIGN_ID], [box.mnt, "/"])[0]
    if name == "DUMP_EXT_LINK":
        return p.call(hook, [1, 772], ["loopback"])[0]         # lo, ARPHRD_LOOPBACK
    if name == "UPDATE_VMA_MAP":
        return p.call(hook, [], [box.file], [0x10000, 0])[0]
    if name in ("POST_FORKING", "RESTORE_INIT"):
        return p.call(hook)[0]
    return p.call(hook, [os.getpid()])[0]                     # the other device hooks: a pid without devices


def check(path: str, level: int = 2, partner: str | None = None, scenario: str | None = None) -> Report:
    """Every check on the plugin at `path`; `partner`: the plugin to chain it with
    (None: plugins/trivial of the source tree); `scenario`: a zdtm-style program."""
    rep = Report()
    box = _Sandbox()
    try:
        path = os.path.abspath(path)
        _check(rep, path, box, level)
        _writes(rep, box)
        if not rep.failed:         # on its own it behaves: now with a neighbour
            _chain(rep, path, partner or default_partner(box), box, level)
            _writes(rep, box)
    finally:
        box.close()
    if rep.failed:
        rep.notes.append("(chain" + (" and scenario" if scenario else "") + ": not run, as checks above failed)")
    elif scenario is not None:
        try:
            rep.add("scenario", True, run_scenario(path, scenario))
        except ScenarioFailed as exc:
            rep.add("scenario", False, str(exc))
    return rep


def _writes(rep: Report, box: _Sandbox) -> None:
    leftovers = sorted(os.listdir(box.cwd)) + sorted(os.listdir(box.tmpdir))
    if leftovers or not any(r[0] == "writes" for r in rep.rows):
        rep.add("writes", not leftovers, f"created outside the image directory: {', '.join(leftovers)}"
                if leftovers else "nothing outside the image directory (cwd, $TMPDIR)")


def _check(rep: Report, path: str, box: _Sandbox, level: int) -> bool:
    """load, descriptor, init/exit, hooks, hygiene; False if it cannot be loaded at all."""
    try:
        p = _spawn(path, host.STAGE_DUMP, box, level)
    except PluginError as exc:
        rep.add("load", False, str(exc))
        return False
    rep.add("load", True, "every symbol resolves (RTLD_NOW)")
    try:
        p.verify()
        ok = rep.add("descriptor", bool(p.name), f"{p.name!r}, version {p.version:#x}, {p.max_hooks} hooks"
                     + (" (old-style: generated; deprecated)" if p.generated else ""))
    except PluginError as exc:
        ok = rep.add("descriptor", False, str(exc))
    p.kill()
    if not ok:
        return False
    hooks_seen: set[int] = set()
    for stage in (host.STAGE_DUMP, host.STAGE_PRE_DUMP, host.STAGE_RESTORE):
        label = f"init/exit {host.STAGE_NAMES[stage]}"
        try:
            p = _spawn(path, stage, box, level)
            before = p.probe()
            p.init(stage)
            before = _hygiene(rep, p, before, "init")
            for h in _stage_hooks(p, stage):
                hooks_seen.add(h)
                reply = _call_foreign(p, h, box)
                good = {-ENOTSUP, 0} if h in PID_HOOKS else {-ENOTSUP}
                rep.add(HOOKS[h], reply["ret"] in good,
                        f"foreign object{'s' if HOOKS[h] in FD_OBJECTS else ''}: {reply['ret']}"
                        + ("" if reply["ret"] in good else f" for {reply.get('object', 'it')}, expected "
                           f"{' or '.join(map(str, sorted(good)))}"))
                before = _hygiene(rep, p, before, HOOKS[h])
            p.exit(0)
            rep.add(label, True, f"init({stage}) = 0, exit({stage}, 0) returned")
        except PluginError as exc:
            rep.add(label, False, str(exc))
            p.kill()
    if not any(c.startswith("hygiene") for c in [r[0] for r in rep.rows]):
        rep.add("hygiene", True, "no fd left open, same cwd and umask after every call")
    if not hooks_seen:
        rep.add("hooks", True, "implements no hook")
    return True


def _stage_hooks(p: Plugin, stage: int) -> list[int]:
    """The hooks of `p` that a run of `stage` calls (pre-dump: none)."""
    if stage == host.STAGE_PRE_DUMP:
        return []
    return sorted(h for h in p.hooks if (h in RESTORE_HOOKS) == (stage == host.STAGE_RESTORE))


# ---------------------------------------------------------------- chain ---

PARTNER_NAME = "plugin-check-partner"


def default_partner(box: _Sandbox) -> str | None:
    """plugins/trivial of the source tree (declines everything), compiled into the
    sandbox under a name no real plugin has (--with checks against real neighbours)."""
    src = Path(host.include_dir()).parents[1] / "plugins" / "trivial" / "trivial.c"
    if not src.exists():
        return None
    out = os.path.join(box.root, f"{PARTNER_NAME}.so")
    res = subprocess.run(["cc", "-O2", "-fPIC", "-shared", f"-I{host.include_dir()}",
                          f'-DTRIVIAL_NAME="{PARTNER_NAME}"', "-o", out, str(src)], capture_output=True, text=True)
    return out if res.returncode == 0 else None


def _chain(rep: Report, path: str, partner: str | None, box: _Sandbox, level: int) -> None:
    if partner is None:
        rep.add("chain", False, "no plugin to chain with (plugins/trivial not found): give --with PATH.so")
        return
    problems: list[str] = []
    for first in (True, False):
        order = [path, partner] if first else [partner, path]
        for stage in (host.STAGE_DUMP, host.STAGE_RESTORE):
            loaded: list[Plugin] = []
            try:
                for lib in order:
                    loaded.append(_spawn(lib, stage, box, level))
                    loaded[-1].verify()
                    host.check_unique(loaded, "the chain")
                for p in loaded:
                    p.init(stage)
                me = loaded[0 if first else 1]
                for h in _stage_hooks(me, stage):
                    for attempt in (1, 2):
                        problems += _chain_call(loaded, me, h, box, f"{'first' if first else 'second'}, call {attempt}")
                for p in loaded:
                    p.exit(-1)
            except PluginError as exc:
                problems.append(f"{'first' if first else 'second'} in the chain: {exc}")
            finally:
                for p in loaded:
                    p.kill()
            if problems:
                break
        if problems:
            break
    other = os.path.basename(partner)
    rep.add("chain", not problems, problems[0] if problems else
            f"with {other}, first and second: foreign objects fall through (asked twice), exit(stage, -1) returns")


def _chain_call(loaded: list[Plugin], me: Plugin, hook: int, box: _Sandbox, where: str) -> list[str]:
    """One chain walk with a foreign object, as host.Plugins.run does it."""
    for p in loaded:
        if hook not in p.hooks:
            continue
        ret = _call_foreign(p, hook, box)["ret"]
        if ret == -ENOTSUP:
            continue
        if hook in PID_HOOKS and ret == 0 and p is me:
            return []                       # a device hook may say "done" for a pid
        if p is me:
            return [f"{HOOKS[hook]} ({where}): answered {ret} for a foreign object, the chain stops there"]
        return []                           # the partner's business
    return []


# ------------------------------------------------------------- scenario ---

class ScenarioFailed(Exception):
    """The scenario check failed; the message says at which step."""


def _zdtm_dir() -> Path:
    zdtm = Path(host.include_dir()).parents[1] / "zdtm"
    if not (zdtm / "lib" / "zdtmtst.h").exists():
        raise ScenarioFailed("zdtm/lib is not here (--scenario needs refcr's source tree)")
    return zdtm


def _run(argv: list[str], what: str, cwd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ScenarioFailed(f"{what}: no end within {timeout:g}s") from None
    if res.returncode != 0:
        lines = [ln for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
        raise ScenarioFailed(f"{what} failed: {lines[-1] if lines else f'status {res.returncode}'}")
    return res


def _wait(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:               # not ours (no subreaper): wait until it is gone
        _wait(lambda: not os.path.exists(f"/proc/{pid}"), 10)


def _reap_exited() -> None:
    """Reap every child already gone: the dumped tree's other processes were
    re-parented to us (the subreaper) and would hold their pids as zombies."""
    while True:
        try:
            got, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if got == 0:
            return


def run_scenario(plugin: str, source: str, timeout: float = 30) -> str:
    """Build `source` against zdtm/lib, start it, dump and restore it with `plugin`
    (-L a directory holding only it), SIGTERM it: its verdict.  The work
    directory is removed on success and kept (named in the message) on failure."""
    import ctypes

    zdtm = _zdtm_dir()
    work = tempfile.mkdtemp(prefix="refcr-plugin-scenario-")
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)             # PR_SET_CHILD_SUBREAPER: the test is ours to reap
    pid = 0
    try:
        prog = os.path.join(work, "prog")
        # refcr's zdtm/lib, or lib/criu for a test written for CRIU's (zdtm/Makefile's 'ext')
        _run(["make", "-s", "-C", str(zdtm), "ext", f"SRC={os.path.abspath(source)}", f"OUT={prog}"],
             f"compiling {source}", work)
        libdir = os.path.join(work, "plugins")
        os.mkdir(libdir)
        os.symlink(plugin, os.path.join(libdir, os.path.basename(plugin)))
        out = os.path.join(work, "out")
        _run([prog, f"--pidfile={work}/pid", f"--outfile={out}"], "starting the scenario", work, timeout)
        pid = int(Path(work, "pid").read_text())
        refcr = [sys.executable, "-m", "refcr"]
        _run([*refcr, "dump", "-t", str(pid), "-D", "img", "-L", libdir, "-o", "dump.log", "-v4"], "dump", work)
        _reap(pid)
        _reap_exited()
        from refcr.images.imagedir import ImageDir
        with ImageDir(os.path.join(work, "img")) as images:
            used = list(images.read_single("inventory").plugins)
        _run([*refcr, "restore", "-D", "img", "-L", libdir, "-o", "restore.log", "-v4", "-d"], "restore", work)
        os.kill(pid, signal.SIGTERM)
        if not _wait(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, timeout):
            raise ScenarioFailed(f"the restored scenario did not end within {timeout:g}s of SIGTERM")
        pid = 0
        lines = [ln for ln in Path(out).read_text(errors="replace").splitlines() if ln.strip()]
        verdict = lines[-1] if lines else "(no output)"
        if verdict != "PASS":
            raise ScenarioFailed(f"{os.path.basename(source)} after restore: {verdict}")
    except ScenarioFailed as exc:
        raise ScenarioFailed(f"{exc} (work dir kept: {work})") from None
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
                _reap(pid)
            except (ProcessLookupError, ChildProcessError):
                pass
    shutil.rmtree(work, ignore_errors=True)
    took = f"the images name it ({', '.join(used)})" if used else "the images record no object it handled"
    return f"{os.path.basename(source)}: PASS after dump and restore; {took}"


def junit_xml(reports: list[tuple[str, Report]], out: str) -> None:
    """The rows as JUnit XML: a testsuite per plugin, a testcase per row."""
    suites = ET.Element("testsuites")
    for path, rep in reports:
        name = os.path.basename(path)
        suite = ET.SubElement(suites, "testsuite", name=f"plugin-check {name}", tests=str(len(rep.rows)),
                              failures=str(len(rep.failed)), errors="0")
        for check_name, ok, detail in rep.rows:
            case = ET.SubElement(suite, "testcase", classname=f"plugin-check.{name}", name=check_name)
            if ok:
                ET.SubElement(case, "system-out").text = detail
            else:
                ET.SubElement(case, "failure", message=detail).text = detail
    try:
        ET.ElementTree(suites).write(out, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise OptionError(f"--junit-xml {out}: {exc.strerror}") from None


def conformance_tests(path: str, partner: str | None = None, scenario: str | None = None):  # noqa: ANN201
    """The checks as a pytest test, one parametrized case per row.  In a plugin's
    own test suite::

        from refcr.plugins.conformance import conformance_tests
        test_conformance = conformance_tests("build/myplugin.so", scenario="tests/prog.c")

    The checks run once, when the module is collected."""
    import pytest

    rows = check(path, partner=partner, scenario=scenario).rows

    @pytest.mark.parametrize("row", rows, ids=[f"{i}-{r[0]}" for i, r in enumerate(rows)])
    def test_plugin_conformance(row: tuple[str, bool, str]) -> None:
        name, ok, detail = row
        assert ok, f"{name}: {detail}"

    return test_plugin_conformance


def main_check(paths: list[str], level: int = 2, partner: str | None = None, scenario: str | None = None,
               junit: str | None = None) -> int:
    for given, what in ((partner, "--with"), (scenario, "--scenario"), *((p, "plugin") for p in paths)):
        if given is not None and not os.path.isfile(given):
            raise OptionError(f"{what} {given}: no such file")
    status = 0
    reports = []
    for path in paths:
        if len(paths) > 1:
            print(f"== {path}")
        rep = check(path, level, partner=os.path.abspath(partner) if partner else None, scenario=scenario)
        reports.append((path, rep))
        print(rep.table())
        if rep.failed:
            print(f"{path}: {len(rep.failed)} check(s) failed: {', '.join(rep.failed)}", file=sys.stderr)
            status = 1
    if junit:
        junit_xml(reports, junit)
    return status
