"""CRIU-compatible plugins: loading, the hook chains, and crash isolation.

What a plugin is (native/include/criu-plugin.h): a shared library with a
descriptor ``CR_PLUGIN_DESC`` (name, init(stage), exit(stage, ret), version,
max_hooks, hooks[]), or an old-style library whose functions are found by
name (``cr_plugin_init``, ``cr_plugin_dump_file`` ...; it gets a generated
descriptor and a deprecation warning).

Where they come from: the directory of ``-L/--libdir``, else
``$CRIU_LIBS_DIR``, else :data:`DEFAULT_DIR` (``/usr/lib/refcr``) if it
exists (the test suite points ``REFCR_PLUGIN_DEFAULT_DIR`` elsewhere to
stand in for it).  Every ``*.so`` there is loaded, in sorted name order,
which is the order of every hook chain.  A descriptor of a newer API or
with more hooks than refcr knows is refused, and so is the run.

The chains: for an object refcr cannot handle itself, each plugin with that
hook is asked in load order; the first answer other than ``-ENOTSUP`` is
the answer.  An fd that no file kind claims (or that ``--external
file[PATH]`` / ``file[MNT_ID:INODE]`` names) goes to DUMP_EXT_FILE(fd, id),
with id = its FileEntry id; the entry records the plugin's name
(:class:`PluginFileEntry`) and only that plugin's RESTORE_EXT_FILE(id) is
asked for it on restore.  The inventory lists the plugins that handled
something, and a restore without one of them is refused naming it.
``init(stage)`` failing fails the run; ``exit(stage, ret)`` is called for
every plugin whose init succeeded, always, with the run's result (0 or -1).
Unix sockets connected outside the tree go to DUMP_UNIX_SK / RESTORE_UNIX_SK
(refcr/net/unix.py), device mappings to HANDLE_DEVICE_VMA and every restored
file mapping to UPDATE_VMA_MAP (refcr/mm/memory.py).

Crash isolation (the choice made here).  Each plugin lives in its own
*host process*: a fork of refcr made at init, which loads the library
(after making refcr._plugins' symbols ``criu_get_image_dir`` and
``print_on_level`` global), runs init and then serves hook calls over a
SOCK_SEQPACKET socketpair until exit.  fds travel both ways with
SCM_RIGHTS: the target's fd (taken with pidfd_getfd, so it is the very
open file description) goes in, a restored fd comes back out.  Compared
with a fork per call this keeps CRIU's semantics that a plugin's globals
live from init to exit (plugins remember what init set up, count ids, ...)
while a segfault, abort or _exit in plugin code only ends its host: refcr
sees EOF, the call fails with "plugin X crashed in HOOK (SIGSEGV)", and the
dump fails the ordinary way (tasks released, directory marked
INCOMPLETE).  A call that does not answer within ``REFCR_PLUGIN_TIMEOUT``
seconds (60) kills the host and fails the same way.  Hosts die with refcr
(PR_SET_PDEATHSIG) and ignore SIGINT (refcr decides).  The image
directory fd and refcr's log are inherited; plugin messages are written
into refcr's log by the host itself (:func:`refcr.log.print_on_level`).
A hook runs in the network namespace refcr's thread is in when it calls
(the host setns()es into its parent's for the call and back): a socket a plugin creates
on restore belongs to the restored tree's namespace, as in CRIU.  Likewise
RESTORE_EXT_FILE, RESTORE_EXT_MOUNT and RESTORE_UNIX_SK run in the tree's mount namespace
when it has its own (a device the plugin opens by path is the tree's /dev).
Costs: one fork per plugin per run, none at all without plugins; the host
holds refcr's fds of the moment it was forked (the image directory and
the log), nothing that a restored tree could notice.
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import stat as stat_mod
from dataclasses import dataclass, field
from typing import Callable

from refcr.errors import RefcrError, UnsupportedObject
from refcr.fs.fd import describe
from refcr.log import log, print_on_level
from refcr.net import nsenter

STAGE_DUMP, STAGE_PRE_DUMP, STAGE_RESTORE = 0, 1, 2
STAGE_NAMES = ("dump", "pre-dump", "restore")

HOOKS = (
    "DUMP_UNIX_SK", "RESTORE_UNIX_SK", "DUMP_EXT_FILE", "RESTORE_EXT_FILE", "DUMP_EXT_MOUNT",
    "RESTORE_EXT_MOUNT", "DUMP_EXT_LINK", "HANDLE_DEVICE_VMA", "UPDATE_VMA_MAP", "RESUME_DEVICES_LATE",
    "PAUSE_DEVICES", "CHECKPOINT_DEVICES", "POST_FORKING", "RESTORE_INIT", "DUMP_DEVICES_LATE",
)
HOOK = {name: i for i, name in enumerate(HOOKS)}
HOOK_MAX = len(HOOKS)
# Hooks whose first argument is an fd of refcr's (sent to the host), and those returning an fd.
FD_IN = {HOOK["DUMP_UNIX_SK"], HOOK["DUMP_EXT_FILE"], HOOK["HANDLE_DEVICE_VMA"]}
FD_OUT = {HOOK["RESTORE_UNIX_SK"], HOOK["RESTORE_EXT_FILE"]}


def gen_version(a: int, b: int, c: int) -> int:
    return (a << 16) + (b << 8) + c


VERSION_OLD = gen_version(0, 1, 0)
VERSION = gen_version(0, 2, 0)
ENOTSUP = errno.ENOTSUP
DEFAULT_DIR = "/usr/lib/refcr"
# Restore hooks that get the tree's mount namespace as their fd and run in it
# (paths a plugin opens are the tree's, as in CRIU, where the restored task calls them).
IN_MNTNS = {HOOK["RESTORE_EXT_MOUNT"], HOOK["RESTORE_EXT_FILE"], HOOK["RESTORE_UNIX_SK"]}
RESTORE_RETRIES = 100          # RESTORE_EXT_FILE asking for retry_needed this often is an error


class PluginError(RefcrError):
    """A plugin refused, failed or crashed."""


def _timeout() -> float:
    try:
        return float(os.environ.get("REFCR_PLUGIN_TIMEOUT", "60"))
    except ValueError:
        return 60.0


def include_dir() -> str:
    """Where criu-plugin.h and criu-log.h are: installed with the package
    (refcr/include), or native/include of a source tree (editable install)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # refcr/
    for d in (os.path.join(package, "include"), os.path.join(os.path.dirname(package), "native", "include")):
        if os.path.exists(os.path.join(d, "criu-plugin.h")):
            return d
    raise PluginError("the plugin headers (criu-plugin.h) are not installed")


def plugin_dir(libdir: str | None) -> str | None:
    """-L, else $CRIU_LIBS_DIR, else the default directory if it exists, else None."""
    if libdir:
        return libdir
    env = os.environ.get("CRIU_LIBS_DIR")
    if env:
        return env
    default = os.environ.get("REFCR_PLUGIN_DEFAULT_DIR") or DEFAULT_DIR
    return default if os.path.exists(default) else None


def libraries(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise PluginError(f"cannot read the plugin directory {directory}: {exc.strerror}") from None
    return [os.path.join(directory, n) for n in sorted(names) if n.endswith(".so") and len(n) > 3]


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return signal.Signals(sig).name
        except ValueError:
            return f"signal {sig}"
    return f"exit status {os.WEXITSTATUS(status)}"


# ------------------------------------------------------------ the host ---

def _send(sock: socket.socket, msg: dict, fds: list[int] = ()) -> None:  # type: ignore[assignment]
    socket.send_fds(sock, [json.dumps(msg).encode()], list(fds))


def _host_main(sock: socket.socket, path: str, stage: int, dirfd: int, level: int,
               now: bool = False, cwd: str | None = None, prepare: Callable[[], None] | None = None) -> int:
    """Body of a host process: load the plugin, then serve until exit.

    `now` binds every symbol at load (RTLD_NOW, for plugin-check), `cwd` is
    where the host runs (plugin-check: an empty directory), `prepare` runs in
    the host before the plugin is loaded (plugin-check: its own mounts)."""
    import ctypes

    from refcr._plugins import ffi, lib

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)          # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        return 1

    @ffi.def_extern()
    def refcr_plugin_log(level: int, msg) -> None:  # noqa: ANN001
        print_on_level(level, ffi.string(msg).decode("utf-8", "replace"))

    if prepare is not None:
        prepare()
    if cwd is not None:
        os.chdir(cwd)
    lib.refcr_host_setup(dirfd, level)
    if lib.refcr_host_export() != 0:
        _send(sock, {"error": "cannot export criu_get_image_dir/print_on_level to plugins"})
        return 1
    err = ffi.new("char[]", 1024)
    h = lib.refcr_dlopen(path.encode(), int(now), err, 1024)
    if h == ffi.NULL:
        _send(sock, {"error": f"cannot load {path}: {ffi.string(err).decode('utf-8', 'replace')}"})
        return 1
    generated = ffi.new("int *")
    d = lib.refcr_plugin_desc(h, os.path.basename(path).encode(), generated)
    if d == ffi.NULL:
        why = ("is not a CRIU plugin: it has no CR_PLUGIN_DESC and no cr_plugin_* function" if generated[0] == 2
               else "cannot make a descriptor for it")
        _send(sock, {"error": f"{path} {why}"})
        return 1
    name = ffi.string(d.name).decode("utf-8", "replace") if d.name != ffi.NULL else ""
    info = {"name": name, "version": d.version, "max_hooks": d.max_hooks, "generated": bool(generated[0])}
    if d.version <= VERSION and d.max_hooks <= HOOK_MAX:
        info["hooks"] = [i for i in range(HOOK_MAX) if lib.refcr_plugin_has_hook(d, i)]
    _send(sock, info)
    while True:
        data, fds, _, _ = socket.recv_fds(sock, 65536, 4)
        if not data:
            return 0
        msg = json.loads(data)
        op = msg["op"]
        if op == "init":
            _send(sock, {"ret": lib.refcr_plugin_init(d, stage)})
        elif op == "exit":
            lib.refcr_plugin_exit(d, stage, msg["ret"])
            _send(sock, {"ret": 0})
            return 0
        elif op == "hook":
            with nsenter.entered(os.getppid() if msg.get("netns") else None):     # refcr's, at its call
                _send_hook_result(sock, ffi, lib, d, msg, fds)
        elif op == "probe":         # what a plugin must not change (plugin-check)
            for fd in fds:
                os.close(fd)
            fds = []
            umask = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("Umask:"))
            _send(sock, {"fds": sorted(int(n) for n in os.listdir("/proc/self/fd")), "cwd": os.getcwd(),
                         "umask": umask})
        for fd in fds:
            os.close(fd)


def _send_hook_result(sock, ffi, lib, d, msg: dict, fds: list[int]) -> None:  # noqa: ANN001
    hook, ints, strs = msg["hook"], list(msg.get("ints", [])), msg.get("strs", [])
    if hook in FD_IN:
        ints[0] = fds[0]
    a = ffi.new("struct refcr_hook_args *")
    keep = [ffi.new("char[]", s.encode()) for s in strs]
    a.i0, a.i1 = (ints + [0, 0])[:2]
    a.s0, a.s1 = (keep + [ffi.NULL, ffi.NULL])[:2]
    a.u0, a.u1 = (list(msg.get("u64", [])) + [0, 0])[:2]
    a.out_int = msg.get("out_int", -1)
    a.out_u64 = a.u1                # UPDATE_VMA_MAP: new_pgoff starts as the old one
    back = _enter_mntns(fds[0]) if hook in IN_MNTNS and fds else None
    try:
        ret = lib.refcr_plugin_call(d, hook, a)
    finally:
        if back is not None:
            _leave_mntns(back)
    out = {"ret": ret, "out_int": a.out_int, "out_u64": a.out_u64, "retry": bool(a.retry)}
    back = []
    if hook in FD_OUT and ret >= 0 and not a.retry:
        back = [ret]
    elif hook == HOOK["UPDATE_VMA_MAP"] and ret >= 0 and a.out_int >= 0:
        back = [a.out_int]
    try:
        _send(sock, out, back)
    except OSError as exc:          # e.g. the plugin returned a number that is no fd
        _send(sock, {"ret": -errno.EBADF, "bad_fd": True, "why": exc.strerror})
    for fd in back:
        try:
            os.close(fd)
        except OSError:
            pass


# ---------------------------------------------------------- the parent ---

@dataclass
class Plugin:
    """One loaded plugin, seen from refcr: its descriptor and its host."""

    path: str
    pid: int
    sock: socket.socket
    name: str = ""
    version: int = 0
    max_hooks: int = 0
    hooks: frozenset[int] = frozenset()
    generated: bool = False
    initialized: bool = False
    alive: bool = True
    netns: str = field(default_factory=lambda: os.readlink("/proc/self/ns/net"))   # the host's

    @classmethod
    def spawn(cls, path: str, stage: int, dirfd: int, level: int, now: bool = False,
              cwd: str | None = None, prepare: Callable[[], None] | None = None) -> "Plugin":
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        pid = os.fork()
        if pid == 0:        # the host: never returns into refcr
            code = 70
            try:
                parent.close()
                code = _host_main(child, path, stage, dirfd, level, now, cwd, prepare)
            except BaseException as exc:  # noqa: B036  (nothing may escape into refcr's code)
                try:
                    log.error("plugin host for %s: %s: %s", path, type(exc).__name__, exc)
                except BaseException:  # noqa: B036
                    pass
            finally:
                os._exit(code)
        child.close()
        p = cls(path, pid, parent, name=os.path.basename(path))
        info, _ = p._request(None, "loading")
        if "error" in info:
            p.kill()
            raise PluginError(info["error"])
        p.name = info["name"] or os.path.basename(path)
        p.version, p.max_hooks, p.generated = info["version"], info["max_hooks"], info["generated"]
        p.hooks = frozenset(info.get("hooks", ()))
        return p

    def verify(self) -> None:
        if self.version > VERSION:
            raise PluginError(f"plugin {self.name} ({self.path}) has API version {self.version:#x}, "
                              f"newer than {VERSION:#x} which refcr supports")
        if self.max_hooks > HOOK_MAX:
            raise PluginError(f"plugin {self.name} ({self.path}) declares {self.max_hooks} hooks, "
                              f"refcr knows {HOOK_MAX}")

    def _request(self, msg: dict | None, what: str, fds: list[int] = ()) -> tuple[dict, list[int]]:  # type: ignore[assignment]
        if not self.alive:
            raise PluginError(f"plugin {self.name} is no longer running (it failed earlier)")
        try:
            if msg is not None:
                _send(self.sock, msg, fds)
            self.sock.settimeout(_timeout())
            data, rfds, _, _ = socket.recv_fds(self.sock, 65536, 4)
        except TimeoutError:
            self.kill()
            raise PluginError(f"plugin {self.name} did not answer {what} within {_timeout():g}s; "
                              "it was killed") from None
        except OSError:
            data, rfds = b"", []
        if not data:
            status = self.reap()
            raise PluginError(f"plugin {self.name} ({os.path.basename(self.path)}) crashed in {what} "
                              f"({_status(status)})")
        return json.loads(data), rfds

    def init(self, stage: int) -> None:
        reply, _ = self._request({"op": "init"}, f"init({stage})")
        if reply["ret"] != 0:
            raise PluginError(f"plugin {self.name}: init({STAGE_NAMES[stage]}) failed ({reply['ret']})")
        self.initialized = True

    def probe(self) -> dict:
        return self._request({"op": "probe"}, "probe")[0]

    def exit(self, ret: int) -> None:
        try:
            self._request({"op": "exit", "ret": ret}, "exit")
        finally:
            self.kill()

    def call(self, hook: int, ints: list[int] = (), strs: list[str] = (),  # type: ignore[assignment]
             u64: list[int] = (), fd: int | None = None) -> tuple[dict, list[int]]:  # type: ignore[assignment]
        msg = {"op": "hook", "hook": hook, "ints": list(ints), "strs": list(strs), "u64": list(u64)}
        if os.readlink("/proc/self/ns/net") != self.netns:     # refcr is in the tree's netns
            msg["netns"] = True
        reply, rfds = self._request(msg, HOOKS[hook], [] if fd is None else [fd])
        log.debug("plugin %s: %s%s = %d", self.name, HOOKS[hook], tuple(ints) + tuple(strs), reply["ret"])
        if reply.get("bad_fd"):
            raise PluginError(f"plugin {self.name}: {HOOKS[hook]} returned an fd that is none "
                              f"({reply.get('why')})")
        return reply, rfds

    def reap(self) -> int:
        self.alive = False
        self.sock.close()
        try:
            return os.waitpid(self.pid, 0)[1]
        except ChildProcessError:
            return 0

    def kill(self) -> None:
        if self.alive:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.reap()


@dataclass
class Plugins:
    """The plugins of one run, in load (= chain) order."""

    stage: int
    directory: str | None
    dirfd: int = -1
    plugins: list[Plugin] = field(default_factory=list)
    used: list[str] = field(default_factory=list)         # names of plugins that handled something

    def chain(self, hook: int) -> list[Plugin]:
        return [p for p in self.plugins if hook in p.hooks]

    def run(self, hook: int, ints: list[int] = (), strs: list[str] = (),  # type: ignore[assignment]
            u64: list[int] = (), fd: int | None = None,
            only: str | None = None) -> tuple[Plugin, dict, list[int]] | None:
        """Ask each plugin with `hook` in turn; the first answer other than -ENOTSUP wins."""
        for p in self.chain(hook):
            if only is not None and p.name != only:
                continue
            reply, rfds = p.call(hook, ints, strs, u64, fd)
            if reply["ret"] != -ENOTSUP:
                return p, reply, rfds
        return None

    def mark_used(self, p: Plugin) -> None:
        if p.name not in self.used:
            self.used.append(p.name)

    def by_name(self, name: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name), None)


_active: Plugins | None = None


def active() -> Plugins | None:
    return _active


def init(stage: int, opts) -> None:  # noqa: ANN001  (refcr.options.Options)
    """Load and init every plugin of the run's plugin directory (none: nothing happens)."""
    global _active
    exit(stage, -1)             # a leftover of an earlier run in this process
    directory = plugin_dir(getattr(opts, "libdir", None))
    if directory is None:
        return
    paths = libraries(directory)
    ps = Plugins(stage, directory)
    _active = ps
    if not paths:
        if getattr(opts, "libdir", None):       # asked for by -L: worth a word (CRIU says nothing)
            log.warning("-L %s: no plugin (*.so) in this directory", directory)
        return
    try:
        ps.dirfd = os.open(opts.images_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise PluginError(f"cannot open the image directory {opts.images_dir} for plugins: "
                          f"{exc.strerror}") from None
    level = getattr(opts, "verbosity", 2)
    try:
        for path in paths:
            p = Plugin.spawn(path, stage, ps.dirfd, level)
            ps.plugins.append(p)
            p.verify()
            if p.generated:
                log.warning("plugin %s: old-style plugin (no CR_PLUGIN_DESC); a descriptor was generated. "
                            "This is deprecated: register it with CR_PLUGIN_REGISTER", path)
            check_unique(ps.plugins, directory)
            log.debug("plugin %s (%s): version %#x, hooks %s", p.name, path, p.version,
                      ", ".join(HOOKS[h] for h in sorted(p.hooks)) or "none")
            p.init(stage)
    except BaseException:
        exit(stage, -1)
        raise
    log.info("plugins from %s: %s", directory, ", ".join(p.name for p in ps.plugins))


def check_unique(loaded: list[Plugin], directory: str) -> None:
    """The last plugin loaded has a name of its own (entries and the inventory name plugins)."""
    p = loaded[-1]
    if any(q.name == p.name for q in loaded[:-1]):
        raise PluginError(f"two plugins are named {p.name!r} in {directory}")


def exit(stage: int, ret: int) -> None:  # noqa: A001  (the API's name)
    """exit(stage, ret) for every plugin whose init succeeded, then end every host.  Never raises."""
    global _active
    ps, _active = _active, None
    if ps is None:
        return
    for p in ps.plugins:
        if p.initialized and p.alive:
            try:
                p.exit(ret)
            except PluginError as exc:
                log.error("%s", exc)
        p.kill()
    if ps.dirfd >= 0:
        os.close(ps.dirfd)


def names() -> list[str]:
    return [p.name for p in _active.plugins] if _active else []


def used() -> list[str]:
    """Plugins that handled at least one object (for InventoryEntry.plugins)."""
    return list(_active.used) if _active else []


def require(needed: list[str]) -> None:
    """Refuse a restore whose images need a plugin that is not loaded."""
    have = set(names())
    missing = [n for n in needed if n not in have]
    if missing:
        where = _active.directory if _active and _active.directory else "no plugin directory"
        raise PluginError(f"the images need plugin(s) {', '.join(missing)}, which are not loaded "
                          f"(from {where}; use -L DIR or CRIU_LIBS_DIR)")


def run_hook(hook: str, *ints: int) -> int:
    """A hook with int arguments (or none) through the chain: its answer, or -ENOTSUP."""
    if _active is None:
        return -ENOTSUP
    got = _active.run(HOOK[hook], list(ints))
    return -ENOTSUP if got is None else got[1]["ret"]


def devices_hook(hook: str, pids: list[int]) -> None:
    """PAUSE_DEVICES / CHECKPOINT_DEVICES / DUMP_DEVICES_LATE / RESUME_DEVICES_LATE for each pid."""
    if _active is None or not _active.chain(HOOK[hook]):
        return
    for pid in pids:
        ret = run_hook(hook, pid)
        if ret < 0 and ret != -ENOTSUP:
            raise PluginError(f"{hook}({pid}) failed in a plugin: {os.strerror(-ret)}")


def stage_hook(hook: str) -> None:
    """RESTORE_INIT / POST_FORKING: a failure (not -ENOTSUP) fails the run."""
    ret = run_hook(hook)
    if ret < 0 and ret != -ENOTSUP:
        raise PluginError(f"{hook} failed in a plugin: {os.strerror(-ret)}")


# --------------------------------------------------- files and sockets ---

def dump_ext_file(fd: int, id: int) -> str | None:
    """DUMP_EXT_FILE(fd, id) through the chain: the name of the plugin that took it, or None."""
    return _dump_with(HOOK["DUMP_EXT_FILE"], fd, [fd, id], f"DUMP_EXT_FILE(id {id})")


def dump_unix_sk(fd: int, id: int) -> bool:
    """DUMP_UNIX_SK(fd, id): True if a plugin took the socket (see :func:`dumped_by` for which)."""
    return _dump_with(HOOK["DUMP_UNIX_SK"], fd, [fd, id], f"DUMP_UNIX_SK(id {id})") is not None


_last_dumper: str | None = None


def dumped_by() -> str | None:
    """The plugin that took the object of the last successful dump_* call."""
    return _last_dumper


def _dump_with(hook: int, fd: int, ints: list[int], what: str) -> str | None:
    """A dump hook given an fd of refcr's, through the chain: the plugin that took it, or None."""
    global _last_dumper
    _last_dumper = None
    if _active is None:
        return None
    got = _active.run(hook, ints, fd=fd)
    if got is None:
        return None
    p, reply, _ = got
    if reply["ret"] < 0:
        raise PluginError(f"plugin {p.name}: {what} failed: {os.strerror(-reply['ret'])}")
    _active.mark_used(p)
    _last_dumper = p.name
    return p.name


def handle_device_vma(fd: int, what: str) -> str | None:
    """HANDLE_DEVICE_VMA(fd, st) for a device mapping: the plugin that takes it, or None."""
    return _dump_with(HOOK["HANDLE_DEVICE_VMA"], fd, [fd], f"HANDLE_DEVICE_VMA for {what}")


def update_vma_map(path: str, addr: int, pgoff: int) -> tuple[int, int] | None:
    """UPDATE_VMA_MAP(path, addr, pgoff, &new_pgoff, &plugin_fd) for a file mapping
    being restored.  As in CRIU, 1 means "map plugin_fd at new_pgoff instead"
    (returned as (fd of refcr's, pgoff)); 0 or every plugin declining: None,
    the file is opened as usual; another negative answer fails the restore."""
    if _active is None or not _active.chain(HOOK["UPDATE_VMA_MAP"]):
        return None
    got = _active.run(HOOK["UPDATE_VMA_MAP"], [], [path], [addr, pgoff])
    if got is None:
        return None
    p, reply, rfds = got
    what = f"UPDATE_VMA_MAP({path}, {addr:#x})"
    if reply["ret"] < 0:
        raise PluginError(f"plugin {p.name}: {what} failed: {os.strerror(-reply['ret'])}")
    if reply["ret"] != 1:
        for fd in rfds:
            os.close(fd)
        return None
    if len(rfds) != 1:
        raise PluginError(f"plugin {p.name}: {what} returned 1 without an fd")
    os.set_inheritable(rfds[0], False)
    log.info("plugin %s: %s: its fd at offset %#x", p.name, what, reply["out_u64"])
    return rfds[0], reply["out_u64"]


def restore_ext_file(plugin: str, id: int, mntns_fd: int | None = None) -> int:
    """RESTORE_EXT_FILE(id) of the plugin that dumped it: an fd of refcr's.
    With mntns_fd the hook runs inside that mount namespace (the tree's)."""
    return _restore_with(HOOK["RESTORE_EXT_FILE"], id, plugin, mntns_fd)


def restore_unix_sk(id: int, plugin: str | None = None, root_pid: int | None = None) -> int:
    """RESTORE_UNIX_SK(id) (of `plugin`, else through the chain): an fd of refcr's.
    With root_pid the hook runs in that tree's mount namespace (paths it connects to
    are the tree's) if it has its own."""
    mntns = _tree_mntns(root_pid)
    try:
        return _restore_with(HOOK["RESTORE_UNIX_SK"], id, plugin, mntns)
    finally:
        if mntns is not None:
            os.close(mntns)


def _restore_with(hook: int, id: int, plugin: str | None, fd: int | None = None) -> int:
    what = f"{HOOKS[hook]}(id {id})"
    if _active is None or (plugin is not None and _active.by_name(plugin) is None):
        raise PluginError(f"{what} needs plugin {plugin or '(any)'}, which is not loaded")
    for _ in range(RESTORE_RETRIES):
        got = _active.run(hook, [id], fd=fd, only=plugin)
        if got is None:
            raise PluginError(f"{what}: no plugin restores it" + (f" ({plugin} declined)" if plugin else ""))
        p, reply, rfds = got
        if reply["retry"] and reply["ret"] >= 0:
            continue
        if reply["ret"] < 0:
            raise PluginError(f"plugin {p.name}: {what} failed: {os.strerror(-reply['ret'])}")
        if len(rfds) != 1:
            raise PluginError(f"plugin {p.name}: {what} returned no fd")
        return rfds[0]
    raise PluginError(f"{what}: the plugin kept asking to be retried")


# ------------------------------------------------------------- mounts ---

def dump_ext_mount(mountpoint: str, mnt_id: int) -> str | None:
    """DUMP_EXT_MOUNT(mountpoint, id) through the chain: the plugin that took the mount, or None."""
    if _active is None:
        return None
    got = _active.run(HOOK["DUMP_EXT_MOUNT"], [mnt_id], [mountpoint])
    if got is None:
        return None
    p, reply, _ = got
    if reply["ret"] < 0:
        raise PluginError(f"plugin {p.name}: DUMP_EXT_MOUNT({mountpoint}, {mnt_id}) failed: "
                          f"{os.strerror(-reply['ret'])}")
    _active.mark_used(p)
    return p.name


def restore_ext_mount(plugin: str, mnt_id: int, mountpoint: str, old_root: str, mntns_fd: int) -> int:
    """RESTORE_EXT_MOUNT(id, mountpoint, old_root, &is_file) of `plugin`, run with
    its host inside the mount namespace mntns_fd (and back out afterwards);
    returns is_file."""
    what = f"RESTORE_EXT_MOUNT({mnt_id}, {mountpoint})"
    p = _active.by_name(plugin) if _active is not None else None
    if p is None:
        raise PluginError(f"{what} needs plugin {plugin}, which is not loaded")
    reply, _ = p.call(HOOK["RESTORE_EXT_MOUNT"], [mnt_id], [mountpoint, old_root], fd=mntns_fd)
    if reply["ret"] < 0:
        why = "declined" if reply["ret"] == -ENOTSUP else f"failed: {os.strerror(-reply['ret'])}"
        raise PluginError(f"plugin {p.name}: {what} {why}")
    return reply["out_int"]


def _enter_mntns(fd: int) -> tuple[int, int]:
    """In a plugin host: enter the mount namespace fd; what _leave_mntns needs to come back."""
    from refcr.ptrace import native
    back = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC), os.open(".", os.O_PATH | os.O_CLOEXEC)
    native.setns(fd, native.CLONE_NEWNS)
    return back


def _leave_mntns(back: tuple[int, int]) -> None:
    from refcr.ptrace import native
    native.setns(back[0], native.CLONE_NEWNS)
    os.fchdir(back[1])
    for fd in back:
        os.close(fd)


# ------------------------------------------------------ the file kind ---

_EXT_FILE_RE = re.compile(r"^file\[(.+)\]$")


def _named_external(t, externals: list[str]) -> bool:  # noqa: ANN001  (fs.fd.FdTarget)
    """--external file[PATH] or file[MNT_ID:INODE] names this fd."""
    for opt in externals:
        m = _EXT_FILE_RE.match(opt)
        if m is None:
            continue
        res = m.group(1)
        ids = res.split(":")
        if len(ids) == 2 and all(x.isdigit() for x in ids):
            if int(t.info.get("mnt_id", -1)) == int(ids[0]) and t.st.st_ino == int(ids[1]):
                return True
        elif os.path.normpath(res) == os.path.normpath(t.link):
            return True
    return False


class PluginFileKind:
    """Open files that a plugin dumps and recreates (FileEntry.plugin).

    It claims only what ``--external file[...]`` names (ahead of every other
    kind); an fd no kind claims comes here through :func:`fallback_kind`.
    """

    field = "plugin"

    def claims(self, t, ctx) -> bool:  # noqa: ANN001
        return bool(ctx.opts.external) and _named_external(t, ctx.opts.external)

    def dump(self, t, ctx):  # noqa: ANN001
        from refcr.pb import plugin_pb2
        from refcr.ptrace import native

        file_id = len(ctx.entries) + 1          # the id DumpFiles.add gives this entry
        fd = native.copy_fd(t.pid, t.fd)
        try:
            name = dump_ext_file(fd, file_id)
        finally:
            os.close(fd)
        if name is None:
            why = "no plugin is loaded" if not names() else f"no plugin took it ({', '.join(names())} declined)"
            raise UnsupportedObject(f"{describe(t)} is of a kind refcr cannot dump, and {why}")
        log.info("%s: dumped by plugin %s as id %d", describe(t), name, file_id)
        return plugin_pb2.PluginFileEntry(plugin=name, id=file_id, path=t.link, flags=t.flags,
                                          mode=t.st.st_mode, rdev=t.st.st_rdev)

    def open(self, e, ctx) -> int:  # noqa: ANN001
        mntns = _tree_mntns(ctx.root_pid)
        try:
            fd = restore_ext_file(e.plugin, e.id, mntns)
        finally:
            if mntns is not None:
                os.close(mntns)
        os.set_inheritable(fd, False)
        if stat_mod.S_IFMT(os.fstat(fd).st_mode) != stat_mod.S_IFMT(e.mode):
            log.warning("plugin %s: id %d (%s) came back as another type of file", e.plugin, e.id, e.path)
        return fd


def _tree_mntns(root_pid: int | None) -> int | None:
    """An fd of the restored tree's mount namespace if it is not refcr's, else None."""
    if root_pid is None or os.readlink(f"/proc/{root_pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
        return None
    return os.open(f"/proc/{root_pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)


PLUGIN_FILE_KIND = PluginFileKind()
KINDS = [PLUGIN_FILE_KIND]


def fallback_kind(t):  # noqa: ANN001
    """The kind for an fd no other kind claimed: the plugins', or UnsupportedObject."""

    if not names():
        raise UnsupportedObject(f"{describe(t)} is of a kind refcr cannot dump (and no plugin is loaded)")
    return PLUGIN_FILE_KIND
