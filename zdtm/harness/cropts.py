"""Dump/restore options only known at run time: WORKDIR/cr-opts.json.

A scenario (or its peer) may write this file before test_daemon(); the harness
reads it once the scenario is ready, before the first dump.  A JSON object,
every key optional:

``dump`` / ``restore``
    lists of extra arguments for the real ``refcr dump`` / ``refcr restore``
    (e.g. ``["--ext-unix-sk", "12345"]`` with a socket inode the scenario
    looked up).
``inherit``
    objects the harness itself creates and hands to ``refcr restore`` as an
    inherited fd, adding ``--inherit-fd fd[N]:RESOURCE``:
    ``{"resource": "pipe:[INO]", "data": "text"}``: a new pipe whose read end
    is passed in, ``data`` queued in it, and its write end closed once the
    restore is done (the task then reads the data, then EOF);
    ``{"resource": "socket:[INO]", "connect": "PATH"}``: a unix stream socket
    the harness connected to PATH (relative to the work dir);
    ``{"resource": "net:[INO]", "netns_of": "peer"}``: the network namespace
    the peer runs in (for a tree dumped with --external net[INO]);
    ``{"resource": "/PATH", "append": "NAME"}``: the file NAME of the work dir,
    created if needed and opened O_WRONLY|O_APPEND by the harness;
    ``{"resource": "tty[RDEV:DEV]", "master_to": "PATH"}``: a new pty pair
    whose slave (O_RDWR|O_NOCTTY) is passed in; its master goes (SCM_RIGHTS)
    over a connection to the unix socket PATH of the work dir (the peer's),
    whose receiver closes that connection once it has set the pty up.
``refuse``
    ``{"step": "dump"|"restore", "opts": [...], "says": "text"}``: option sets
    that must be refused: refcr runs with exactly those options (not the
    .desc's).  Each refused dump runs before the real dump against
    the live tree, which must survive unchanged; each refused restore runs
    after the real dump, and must leave no process behind.  Either must exit
    non-zero with exactly one line on stderr (no traceback) containing
    ``says``.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import snapshot

FILE = "cr-opts.json"


class CrOptsError(Exception):
    """A malformed cr-opts.json; the message names the problem."""


@dataclass(frozen=True)
class Inherit:
    resource: str
    data: str | None = None
    connect: str | None = None
    netns_of: str | None = None
    append: str | None = None
    master_to: str | None = None


@dataclass(frozen=True)
class Refusal:
    step: str
    opts: tuple[str, ...]
    says: str


@dataclass(frozen=True)
class RunOpts:
    dump: tuple[str, ...] = ()
    restore: tuple[str, ...] = ()
    inherit: tuple[Inherit, ...] = ()
    refuse: tuple[Refusal, ...] = ()

    def refusals(self, step: str) -> list[Refusal]:
        return [r for r in self.refuse if r.step == step]


def _strings(v: object, what: str) -> tuple[str, ...]:
    if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        raise CrOptsError(f"{FILE}: {what} must be a list of strings, not {v!r}")
    return tuple(v)


def _inherit(v: object) -> Inherit:
    if not isinstance(v, dict) or not isinstance(v.get("resource"), str):
        raise CrOptsError(f"{FILE}: inherit entries need a 'resource' string: {v!r}")
    res = v["resource"]
    if res.startswith("pipe:[") and isinstance(v.get("data", ""), str):
        return Inherit(res, data=v.get("data", ""))
    if res.startswith("socket:[") and isinstance(v.get("connect"), str):
        return Inherit(res, connect=v["connect"])
    if res.startswith("net:[") and v.get("netns_of") == "peer":
        return Inherit(res, netns_of="peer")
    if res.startswith(("/", "file[")) and isinstance(v.get("append"), str) and "/" not in v["append"]:
        return Inherit(res, append=v["append"])
    if res.startswith("tty[") and isinstance(v.get("master_to"), str) and "/" not in v["master_to"]:
        return Inherit(res, master_to=v["master_to"])
    raise CrOptsError(f"{FILE}: inherit {v!r}: pipe:[INO] with 'data', socket:[INO] with 'connect', "
                      "net:[INO] with 'netns_of': 'peer', /PATH with 'append': NAME, "
                      "or tty[RDEV:DEV] with 'master_to': NAME")


def _refusal(v: object) -> Refusal:
    if not (isinstance(v, dict) and v.get("step") in ("dump", "restore") and isinstance(v.get("says"), str)):
        raise CrOptsError(f"{FILE}: refuse entries are {{'step': 'dump'|'restore', 'opts': [...], 'says': str}}: "
                          f"{v!r}")
    return Refusal(v["step"], _strings(v.get("opts"), "refuse opts"), v["says"])


def load(workdir: Path) -> RunOpts:
    path = workdir / FILE
    if not path.exists():
        return RunOpts()
    try:
        raw = json.loads(path.read_text())
    except ValueError as e:
        raise CrOptsError(f"{FILE}: not JSON: {e}") from None
    if not isinstance(raw, dict) or set(raw) - {"dump", "restore", "inherit", "refuse"}:
        raise CrOptsError(f"{FILE}: an object with keys dump, restore, inherit, refuse: {raw!r}")
    inherit = raw.get("inherit", [])
    refuse = raw.get("refuse", [])
    if not isinstance(inherit, list) or not isinstance(refuse, list):
        raise CrOptsError(f"{FILE}: 'inherit' and 'refuse' must be lists")
    return RunOpts(
        dump=_strings(raw.get("dump", []), "dump"),
        restore=_strings(raw.get("restore", []), "restore"),
        inherit=tuple(_inherit(v) for v in inherit),
        refuse=tuple(_refusal(v) for v in refuse),
    )


@dataclass
class Handed:
    """The fds the harness made for one restore: pass_fds, the options naming
    them, what to close (in the harness) once the restore is over, and the
    fd targets (/proc/PID/fd links) that stand for one handed-in object."""

    pass_fds: list[int] = field(default_factory=list)
    opts: list[str] = field(default_factory=list)
    after: list[int] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def close_passed(self) -> None:
        for fd in self.pass_fds:
            os.close(fd)
        self.pass_fds.clear()

    def close_all(self) -> None:
        self.close_passed()
        for fd in self.after:
            os.close(fd)
        self.after.clear()


def make_inherited(items: tuple[Inherit, ...], workdir: Path, peer_pid: int | None = None) -> Handed:
    out = Handed()
    try:
        for it in items:
            if it.append is not None:
                fd = os.open(workdir / it.append, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                out.pass_fds.append(fd)
            elif it.netns_of is not None:
                if peer_pid is None:
                    raise CrOptsError(f"{FILE}: inherit {it.resource}: the scenario has no peer")
                fd = os.open(f"/proc/{peer_pid}/ns/net", os.O_RDONLY)
                out.pass_fds.append(fd)
            elif it.master_to is not None:
                fd = _new_pty(workdir / it.master_to)
                out.pass_fds.append(fd)
                label = f"<inherited {it.resource}>"
                out.names[os.ttyname(fd)] = label
                old = _pts_name(it.resource)
                if old:
                    out.names[old] = label
            elif it.data is not None:
                r, w = os.pipe()
                data = it.data.encode()
                if os.write(w, data) != len(data):
                    raise OSError(f"short write of {len(data)} bytes into a new pipe")
                out.pass_fds.append(r)
                out.after.append(w)
                fd = r
            else:
                assert it.connect is not None
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(str(workdir / it.connect))
                s.setblocking(True)     # settimeout made it O_NONBLOCK: hand it in as connect() made it
                fd = s.detach()
                out.pass_fds.append(fd)
            out.opts += ["--inherit-fd", f"fd[{fd}]:{it.resource}"]
    except BaseException:
        out.close_all()
        raise
    return out


def _new_pty(to: Path) -> int:
    """A new pty pair: the master is sent over a connection to `to`, whose
    receiver closes it once ready; returns the slave."""
    master, slave = os.openpty()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(to))
            socket.send_fds(s, [b"m"], [master])
            while s.recv(64):
                pass
    except BaseException:
        os.close(slave)
        raise
    finally:
        os.close(master)
    return slave


def _pts_name(resource: str) -> str | None:
    """/dev/pts/N of a tty[RDEV:DEV] resource that is a pty slave."""
    rdev = int(resource[4:-1].split(":")[0], 16)
    major = os.major(rdev)
    return f"/dev/pts/{(major - 136) * 256 + os.minor(rdev)}" if 136 <= major < 144 else None


INHERITED_DROPS = ("pos", "mnt_id", "ino", "mode", "owner", "size", "mtime", "atime")


def normalise(state: snapshot.TreeState, items: tuple[Inherit, ...], workdir: Path,
              handed: dict[str, str] | None = None) -> snapshot.TreeState:
    """An fd that was the file of an "append" inherit before restore and is
    the handed-in file after it is the same thing to the state comparison
    (the scenario checks the file itself): its offset and mount (the
    caller's, in the ns flavor) may differ, its flags may not.  So are the
    fd targets `handed` names (Handed.names: a terminal before and after)."""
    names = dict(handed or {})
    for it in items:
        if it.append is not None:
            res = it.resource[5:-1] if it.resource.startswith("file[") else it.resource
            names[os.path.normpath(res)] = names[str(workdir / it.append)] = f"<inherited {it.resource}>"
    if not names:
        return state

    def fd(f: snapshot.Fd) -> snapshot.Fd:   # an inherited fd is another file: its own position, size, times
        if f.target not in names:
            return f
        return replace(f, target=names[f.target], info=tuple(kv for kv in f.info if kv[0] not in INHERITED_DROPS))

    return snapshot.TreeState(tuple(replace(t, fds=tuple(fd(f) for f in t.fds)) for t in state.tasks))


def reconnected(before: snapshot.TreeState, after: snapshot.TreeState,
                restore_opts: tuple[str, ...] | list[str]) -> tuple[snapshot.TreeState, snapshot.TreeState]:
    """A unix socket the restore reconnected with --ext-unix-sk ID:PATH has a
    new peer by design (seed 001's fresh B): its peername is not compared."""
    paths = set()
    for i, opt in enumerate(restore_opts):
        value = opt.split("=", 1)[1] if opt.startswith("--ext-unix-sk=") else (
            restore_opts[i + 1] if opt == "--ext-unix-sk" and i + 1 < len(restore_opts) else "")
        if ":" in value:
            paths.add(value.split(":", 1)[1])
    if not paths:
        return before, after
    moved = {(t.pid, f.fd) for t in after.tasks for f in t.fds
             if any(k == "peername" and v.strip("'") in paths for k, v in f.info)}

    def drop(state: snapshot.TreeState) -> snapshot.TreeState:
        return snapshot.TreeState(tuple(replace(t, fds=tuple(
            replace(f, info=tuple(kv for kv in f.info if kv[0] != "peername")) if (t.pid, f.fd) in moved else f
            for f in t.fds)) for t in state.tasks))

    return drop(before), drop(after)
