"""`refcr plugin-check PATH.so`: does a plugin behave as refcr (and CRIU) expect?

Each check prints one row (check, ok/FAIL, detail); any FAIL makes the exit
status 1.  The plugin runs in plugin hosts exactly as in a real run
(refcr/plugins.py), with an empty working directory, an empty $TMPDIR and
a scratch image directory:

  load           it loads with every symbol bound now (RTLD_NOW): nothing
                 it needs is missing from refcr
  descriptor     API version and max_hooks within refcr's, a name
  init/exit      init(stage) returns 0 and exit(stage, 0) returns, for
                 dump, pre-dump and restore
  <HOOK>         every hook it implements, given an object that is not
                 its (a socketpair, a scratch file, an unknown id, the
                 loopback link ...), answers -ENOTSUP so that the chain
                 goes on (device hooks given a pid may answer 0 too)
  hygiene        after each call: no fd left open, same cwd, same umask
  writes         nothing was created in its cwd or $TMPDIR (a plugin
                 writes into the image directory only)
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
from dataclasses import dataclass, field

from refcr import plugins
from refcr.plugins import ENOTSUP, HOOK, HOOKS, Plugin, PluginError

# A foreign object for each hook: (ints, strs, u64, needs an fd)
FOREIGN_ID = 424242
PID_HOOKS = {HOOK[h] for h in ("RESUME_DEVICES_LATE", "PAUSE_DEVICES", "CHECKPOINT_DEVICES",
                               "POST_FORKING", "RESTORE_INIT", "DUMP_DEVICES_LATE")}
RESTORE_HOOKS = {HOOK[h] for h in ("RESTORE_UNIX_SK", "RESTORE_EXT_FILE", "RESTORE_EXT_MOUNT",
                                   "UPDATE_VMA_MAP", "RESUME_DEVICES_LATE", "POST_FORKING", "RESTORE_INIT")}


@dataclass
class Report:
    rows: list[tuple[str, bool, str]] = field(default_factory=list)

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
        return "\n".join(lines)


class _Sandbox:
    """Scratch image directory, cwd and $TMPDIR for the plugin hosts."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="refcr-plugin-check-")
        self.root = self.tmp.name
        self.images, self.cwd, self.tmpdir = (os.path.join(self.root, n) for n in ("img", "cwd", "tmp"))
        for d in (self.images, self.cwd, self.tmpdir):
            os.mkdir(d)
        self.dirfd = os.open(self.images, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.file = os.path.join(self.root, "foreign-file")
        with open(self.file, "w") as f:
            f.write("not a plugin's business\n")

    def close(self) -> None:
        os.close(self.dirfd)
        self.tmp.cleanup()


def _spawn(path: str, stage: int, box: _Sandbox, level: int) -> Plugin:
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = box.tmpdir
    try:
        return Plugin.spawn(path, stage, box.dirfd, level, now=True, cwd=box.cwd)
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


def _call_foreign(p: Plugin, hook: int, box: _Sandbox) -> dict:
    name = HOOKS[hook]
    if name in ("DUMP_UNIX_SK", "DUMP_EXT_FILE", "HANDLE_DEVICE_VMA"):
        if name == "DUMP_UNIX_SK":
            a, b = socket.socketpair()
            fd, keep = a.fileno(), (a, b)
        else:
            fd = os.open(box.file, os.O_RDONLY | os.O_CLOEXEC)
            keep = (fd,)
        try:
            return p.call(hook, [fd, FOREIGN_ID], fd=fd)[0]
        finally:
            for k in keep:
                k.close() if hasattr(k, "close") else os.close(k)
    if name in ("RESTORE_UNIX_SK", "RESTORE_EXT_FILE", "DUMP_DEVICES_LATE"):
        return p.call(hook, [FOREIGN_ID])[0]
    if name == "DUMP_EXT_MOUNT":
        return p.call(hook, [FOREIGN_ID], [box.cwd])[0]
    if name == "RESTORE_EXT_MOUNT":
        return p.call(hook, [FOREIGN_ID], [box.cwd, "/"])[0]
    if name == "DUMP_EXT_LINK":
        return p.call(hook, [1, 772], ["loopback"])[0]         # lo, ARPHRD_LOOPBACK
    if name == "UPDATE_VMA_MAP":
        return p.call(hook, [], [box.file], [0x10000, 0])[0]
    if name in ("POST_FORKING", "RESTORE_INIT"):
        return p.call(hook)[0]
    return p.call(hook, [os.getpid()])[0]                     # the other device hooks: a pid without devices


def check(path: str, level: int = 2) -> Report:
    rep = Report()
    box = _Sandbox()
    try:
        _check(rep, os.path.abspath(path), box, level)
        leftovers = sorted(os.listdir(box.cwd)) + sorted(os.listdir(box.tmpdir))
        rep.add("writes", not leftovers, f"created outside the image directory: {', '.join(leftovers)}"
                if leftovers else "nothing outside the image directory (cwd, $TMPDIR)")
    finally:
        box.close()
    return rep


def _check(rep: Report, path: str, box: _Sandbox, level: int) -> None:
    try:
        p = _spawn(path, plugins.STAGE_DUMP, box, level)
    except PluginError as exc:
        rep.add("load", False, str(exc))
        return
    rep.add("load", True, "every symbol resolves (RTLD_NOW)")
    try:
        p.verify()
        ok = rep.add("descriptor", bool(p.name), f"{p.name!r}, version {p.version:#x}, {p.max_hooks} hooks"
                     + (" (old-style: generated; deprecated)" if p.generated else ""))
    except PluginError as exc:
        ok = rep.add("descriptor", False, str(exc))
    p.kill()
    if not ok:
        return
    hooks_seen: set[int] = set()
    for stage in (plugins.STAGE_DUMP, plugins.STAGE_PRE_DUMP, plugins.STAGE_RESTORE):
        label = f"init/exit {plugins.STAGE_NAMES[stage]}"
        try:
            p = _spawn(path, stage, box, level)
            before = p.probe()
            p.init(stage)
            before = _hygiene(rep, p, before, "init")
            hooks = sorted(h for h in p.hooks if (h in RESTORE_HOOKS) == (stage == plugins.STAGE_RESTORE))
            if stage == plugins.STAGE_PRE_DUMP:
                hooks = []
            for h in hooks:
                hooks_seen.add(h)
                reply = _call_foreign(p, h, box)
                good = {-ENOTSUP, 0} if h in PID_HOOKS else {-ENOTSUP}
                rep.add(HOOKS[h], reply["ret"] in good,
                        f"foreign object: {reply['ret']}" + ("" if reply["ret"] in good else
                                                             f", expected {' or '.join(map(str, sorted(good)))}"))
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


def main_check(paths: list[str], level: int = 2) -> int:
    status = 0
    for path in paths:
        if len(paths) > 1:
            print(f"== {path}")
        rep = check(path, level)
        print(rep.table())
        if rep.failed:
            print(f"{path}: {len(rep.failed)} check(s) failed: {', '.join(rep.failed)}", file=sys.stderr)
            status = 1
    return status
