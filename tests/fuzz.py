"""The image fuzzer: mutations of real images, each restored in a sandbox.

Real images come from tests/crafted.py (four small programs, dumped once
per run).  A case copies one image directory, applies one to three
mutations drawn by Hypothesis (bit flips, truncation, schema-aware field
edits with edge values, strings with NUL / control characters / ``..`` /
relative paths, removed or duplicated repeated items, files swapped in from
another program's images, deleted files, a ``parent`` link), and runs
``refcr restore -d`` on it in a forked child that

* is in a private mount namespace where every mount is read-only except
  the scratch directory (images, victim files, the programs' homes, and
  $TMPDIR: a restored mount namespace is staged there) and /proc, and
* runs refcr's CLI in-process (forked from a process that imported refcr
  once: a case costs a fork, not an interpreter start).

A case fails on: exit code 2 or anything but 0/1, a traceback or internal
error, a hang over 20 s, a process left alive after a failed restore, a
file created or changed in the scratch directory outside the image
directory (the victim files and the programs' homes are there; a socket
file a successful restore bound at the path its image names is the restored
tree's own: README, "what it can, by nature"), or refcr meeting the
read-only host (it tried to write outside).
"""
from __future__ import annotations

import ctypes
import json
import re
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crafted import Dumped, dump_program

from refcr.errors import ImageError
from refcr.images.imagedir import ImageDir, type_by_filename

HANG = 20.0
PROGRAMS = ("files", "threads", "tree", "userns", "aio")
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 1
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
NR_MOUNT_SETATTR = 442
VICTIM = b"victim of the fuzzer\n" * 200

INTS = [0, 1, 2, 3, 7, 9, 19, 0xFF, 0xFFF, 0x1000, 0x7FFF, 0xFFFF, 1 << 22, (1 << 31) - 1, 1 << 31,
        (1 << 32) - 1, 1 << 47, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 0o101, 0o1102, 0o20000000]
SIGNED = [0, 1, -1, -2, (1 << 31) - 1, -(1 << 31)]
STRINGS = ["", "\0", "a\0b", "/tmp/\0x", "\n", "x\ny", "\x1b[31mred\x1b[0m", "\x7f\x9b", "..", "../../../../tmp/pwned",
           "../victim", "relative/path", "/", "//", "/proc/self/fd/0", "/proc/self/root/tmp", "/dev/zero",
           "/dev/null", "/etc/passwd", "/nonexistent/x", "x" * 5000, "user", "mnt"]


_libc = ctypes.CDLL(None, use_errno=True)


def _mount(src: str, dst: str, flags: int) -> None:
    if _libc.mount(src.encode(), dst.encode(), None, flags, None):
        raise OSError(ctypes.get_errno(), f"mount {dst}")


def _setattr(path: str, set_: int, clr: int, flags: int) -> None:
    attr = (ctypes.c_uint64 * 4)(set_, clr, 0, 0)
    if _libc.syscall(NR_MOUNT_SETATTR, AT_FDCWD, path.encode(), flags, ctypes.byref(attr), 32):
        raise OSError(ctypes.get_errno(), f"mount_setattr {path}")


def sandbox(scratch: Path) -> None:
    """This process: a private mount namespace, the host read-only but scratch and /proc."""
    from refcr.ptrace import native
    native.unshare(native.CLONE_NEWNS)
    _mount("none", "/", MS_REC | MS_PRIVATE)
    _mount(str(scratch), str(scratch), MS_BIND)
    _setattr("/", MOUNT_ATTR_RDONLY, 0, AT_RECURSIVE)
    _setattr(str(scratch), 0, MOUNT_ATTR_RDONLY, 0)
    _setattr("/proc", 0, MOUNT_ATTR_RDONLY, 0)


# ------------------------------------------------------------ mutations ---

def scalar_fields(msg: Any, prefix: tuple = ()) -> list[tuple]:
    """Paths to every set scalar (and repeated) field of a message: tuples of names/indices."""
    out = []
    for fd, value in msg.ListFields():
        if fd.is_repeated:
            out.append(prefix + (fd.name, "*"))            # the list itself
            for i, v in enumerate(value):
                if fd.type == fd.TYPE_MESSAGE:
                    out += scalar_fields(v, prefix + (fd.name, i))
                else:
                    out.append(prefix + (fd.name, i))
        elif fd.type == fd.TYPE_MESSAGE:
            out += scalar_fields(value, prefix + (fd.name,))
        else:
            out.append(prefix + (fd.name,))
    return out


def _walk(msg: Any, path: tuple) -> tuple[Any, Any]:
    """(container, key) of the field at path."""
    obj = msg
    for step in path[:-1]:
        obj = obj[step] if isinstance(step, int) else getattr(obj, step)
    return obj, path[-1]


def edge_value(fd: Any, pick: int) -> Any:
    t = fd.type
    if t in (fd.TYPE_STRING,):
        return STRINGS[pick % len(STRINGS)]
    if t == fd.TYPE_BYTES:
        s = STRINGS[pick % len(STRINGS)]
        return s.encode("utf-8", "surrogateescape") if pick % 3 else os.urandom(pick % 300)
    if t == fd.TYPE_BOOL:
        return bool(pick % 2)
    if t in (fd.TYPE_INT32, fd.TYPE_SINT32, fd.TYPE_SFIXED32):
        return SIGNED[pick % len(SIGNED)]
    if t in (fd.TYPE_INT64, fd.TYPE_SINT64, fd.TYPE_SFIXED64):
        return [0, -1, 1 << 62, -(1 << 63), (1 << 63) - 1][pick % 5]
    if t == fd.TYPE_ENUM:
        return [0, 1, 5, 99, 1 << 20][pick % 5]
    v = INTS[pick % len(INTS)]
    if t in (fd.TYPE_UINT32, fd.TYPE_FIXED32):
        return v & 0xFFFFFFFF
    return v


def _field_descriptor(container: Any, key: Any) -> Any:
    return container.DESCRIPTOR.fields_by_name[key]


def edit_field(msg: Any, path: tuple, pick: int) -> str:
    """Change the field at path to an edge value (or drop/duplicate/clear a list)."""
    if path[-1] == "*":
        container, name = _walk(msg, path[:-1])
        lst = getattr(container, name)
        how = pick % 3
        if how == 0 or not len(lst):
            del lst[:]
            return f"{'.'.join(map(str, path[:-1]))} cleared"
        if how == 1:
            del lst[pick % len(lst)]
            return f"{'.'.join(map(str, path[:-1]))}: an item dropped"
        item = lst[pick % len(lst)]
        if hasattr(item, "CopyFrom"):
            lst.add().CopyFrom(item)
        else:
            lst.append(item)
        return f"{'.'.join(map(str, path[:-1]))}: an item duplicated"
    container, key = _walk(msg, path)
    if isinstance(key, int):                     # an item of a repeated scalar
        parent, name = _walk(msg, path[:-1])
        fd = _field_descriptor(parent, name)
        value = edge_value(fd, pick)
        container[key] = value
    else:
        fd = _field_descriptor(container, key)
        value = edge_value(fd, pick)
        setattr(container, key, value)
    return f"{'.'.join(map(str, path))} = {value!r:.60}"


@dataclass
class Case:
    """One mutated image directory and what was done to it."""

    program: str
    done: list[str] = field(default_factory=list)


def image_files(img: Path) -> list[str]:
    return sorted(n for n in os.listdir(img) if type_by_filename(n))


def mutate(img: Path, others: dict[str, Path], draw: Any, st: Any, case: Case) -> None:
    """Apply one mutation chosen with Hypothesis' draw()."""
    names = image_files(img)
    kind = draw(st.sampled_from(["field", "field", "field", "field", "bitflip", "truncate", "swap",
                                 "delete", "parent"]))
    name = draw(st.sampled_from(names))
    path = img / name
    t, ident = type_by_filename(name)
    if kind == "field" and not t.raw:
        with ImageDir(str(img), "r") as d:
            try:
                head, entries = d.read_head(t.name, id=ident)
            except ImageError:                  # an earlier mutation broke it: flip bits instead
                head, entries = None, []
            msgs = ([head] if head is not None else []) + entries
            if not msgs:
                kind = "truncate"
            else:
                i = draw(st.integers(0, len(msgs) - 1))
                fields = scalar_fields(msgs[i])
                if not fields:
                    kind = "bitflip"
                else:
                    what = edit_field(msgs[i], fields[draw(st.integers(0, len(fields) - 1))],
                                      draw(st.integers(0, 1 << 16)))
                    case.done.append(f"{name}[{i}].{what}")
                    os.unlink(path)
                    d.write(t.name, msgs[1:] if head is not None else msgs, id=ident,
                            head=msgs[0] if head is not None else None)
                    return
    data = path.read_bytes()
    if kind in ("bitflip", "field"):
        if not data:
            return
        at = draw(st.integers(0, len(data) - 1))
        bit = draw(st.integers(0, 7))
        path.write_bytes(data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1:])
        case.done.append(f"{name}: bit {bit} of byte {at} flipped")
    elif kind == "truncate":
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        path.write_bytes(data[:at])
        case.done.append(f"{name}: truncated to {at} bytes")
    elif kind == "swap":
        donor_prog = draw(st.sampled_from(sorted(others)))
        donor = others[donor_prog]
        same = [n for n in image_files(donor) if type_by_filename(n)[0].name == t.name]
        if same:
            pick = draw(st.sampled_from(same))
            shutil.copyfile(donor / pick, path)
            case.done.append(f"{name}: replaced by {donor_prog}'s {pick}")
    elif kind == "delete":
        path.unlink()
        case.done.append(f"{name}: deleted")
    elif kind == "parent":
        target = draw(st.sampled_from(["../" + donor.name for donor in others.values()]
                                      + ["/", "..", "../..", "../../../../etc", "nonexistent", "."]))
        link = img / "parent"
        if link.is_symlink():
            link.unlink()
        os.symlink(target, link)
        case.done.append(f"parent -> {target}")


# ------------------------------------------------------------- running ---

@dataclass
class Outcome:
    rc: int | None                 # None: hung
    stderr: str
    seconds: float
    leftovers: list[int]
    outside: list[str]

    # An image may name an existing host file open read-write (README: the
    # restored process gets the open files its image names); on the read-only
    # host that reopen is refused.  Writing, creating or truncating is what fails.
    def problem(self) -> str | None:
        if self.rc is None:
            return f"hang over {HANG:.0f} s"
        if self.rc not in (0, 1):
            return f"exit {self.rc}"
        if "Traceback" in self.stderr or "internal error" in self.stderr:
            return "traceback"
        if "Read-only file system" in self.stderr and not REOPEN_REFUSED.match(self.stderr):
            return "tried to write outside the scratch dir"
        if self.leftovers:
            return f"processes left after a failed restore: {self.leftovers}"
        if self.outside:
            return f"created or changed outside the image dir: {self.outside}"
        return None


REOPEN_REFUSED = re.compile(r"refcr: error: cannot reopen [^\n]*: Read-only file system\n?$")


def _children() -> list[tuple[int, str]]:
    me = os.getpid()
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[1]) == me:
            out.append((int(e), rest[0]))
    return out


def _reap_all(kill: bool) -> list[int]:
    """Children of this (subreaper) process: kill them and reap; their pids (live ones)."""
    alive = []
    for _ in range(3):
        kids = _children()
        for pid, state in kids:
            if state != "Z":
                alive.append(pid)
                if kill:
                    try:
                        os.killpg(os.getpgid(pid), signal.SIGKILL)
                    except OSError:
                        pass
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
        deadline = time.monotonic() + 5
        while _children() and time.monotonic() < deadline:
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            time.sleep(0.005)
        if not _children():
            break
    return sorted(set(alive))


def snapshot(scratch: Path, skip: set[Path]) -> dict[str, tuple]:
    seen = {}
    for dirpath, dirs, files in os.walk(scratch):
        if Path(dirpath) in skip:
            dirs.clear()
            continue
        for n in files + dirs:
            p = os.path.join(dirpath, n)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            seen[p] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
    return seen


def run_restore(img: Path, scratch: Path, cwd: Path) -> tuple[int | None, str, float]:
    """refcr restore -d of img in a sandboxed child; (exit code or None if hung, stderr, seconds)."""
    err = scratch / "stderr"
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:                                        # pragma: no cover (child)
        rc = 3
        try:
            os.setsid()
            fd = os.open(str(err), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 2)
            sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")   # not pytest's
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            sandbox(scratch)
            os.environ["TMPDIR"] = tempfile.tempdir = str(scratch / "tmp")   # refcr's staging dirs
            os.chdir(cwd)
            from refcr import cli
            rc = cli.main(["restore", "-D", str(img), "-d", "-o", "restore.log"])
        except BaseException as exc:                    # the harness itself failed: say so
            os.write(2, f"fuzz harness: {exc!r}\n".encode())
        os._exit(rc)
    rc: int | None = None
    while time.monotonic() - t0 < HANG:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.005)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(pid, 0)
    secs = time.monotonic() - t0
    return rc, err.read_text(errors="replace") if err.exists() else "", secs


def preload() -> None:
    """Import all of refcr once, so that each forked case starts at once."""
    import importlib
    import pkgutil

    import refcr
    for m in pkgutil.walk_packages(refcr.__path__, "refcr."):
        if m.name not in ("refcr.demo", "refcr.__main__"):
            importlib.import_module(m.name)


@dataclass
class Lab:
    """The dumped programs and the scratch directory the fuzz cases run in."""

    scratch: Path
    dumps: dict[str, Dumped]
    victims: list[Path]

    @classmethod
    def make(cls, scratch: Path) -> "Lab":
        preload()
        base = scratch / "base"
        base.mkdir()
        (scratch / "tmp").mkdir()
        dumps = {name: dump_program(name, base) for name in PROGRAMS}
        victims = []
        for name in ("victim", "tmp/pwned-target", "etc-copy/passwd"):
            v = scratch / name
            v.parent.mkdir(parents=True, exist_ok=True)
            v.write_bytes(VICTIM)
            victims.append(v)
        return cls(scratch, dumps, victims)

    def case(self, program: str, draw: Any, st: Any) -> tuple[Case, Outcome]:
        case_dir = self.scratch / "case"
        if case_dir.exists():
            shutil.rmtree(case_dir)
        case_dir.mkdir()
        img = case_dir / "img"
        shutil.copytree(self.dumps[program].images, img)
        cwd = case_dir / "a" / "b" / "c"
        cwd.mkdir(parents=True)
        case = Case(program)
        others = {n: d.images for n, d in self.dumps.items() if n != program}
        for _ in range(draw(st.integers(1, 3))):
            mutate(img, others, draw, st, case)
        home_sock = self.dumps["files"].home / "sock"
        home_sock.unlink(missing_ok=True)
        skip = {img}
        before = snapshot(self.scratch, skip)
        rc, stderr, secs = run_restore(img, self.scratch, cwd)
        left = _reap_all(kill=True)
        after = snapshot(self.scratch, skip)
        ignore = {str(self.scratch / "stderr"), str(home_sock)}
        outside = sorted(p for p in set(after) | set(before)
                         if p not in ignore and after.get(p, (None,))[:3] != before.get(p, (None,))[:3]
                         and not (p in after and p in before and os.path.isdir(p))
                         and not (rc == 0 and p not in before and _is_socket(p)))
        home_sock.unlink(missing_ok=True)
        for v in self.victims:
            if v.read_bytes() != VICTIM:
                outside.append(f"{v} (contents)")
                v.write_bytes(VICTIM)
        return case, Outcome(rc, stderr, secs, left if rc != 0 else [], outside)


def _is_socket(path: str) -> bool:
    """A socket file: what a restored tree binds at the path its image names
    (README: what an image can make refcr do, by nature); after a failed
    restore none may be left."""
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def summary(records: list[dict[str, Any]]) -> str:
    """Counts per outcome, and the mean seconds a restore took per outcome."""
    counts: dict[str, int] = {}
    secs: dict[str, float] = {}
    for r in records:
        key = r["problem"] or ("restored" if r["rc"] == 0 else "refused")
        counts[key] = counts.get(key, 0) + 1
        secs[key] = secs.get(key, 0.0) + r["seconds"]
    return json.dumps({k: {"n": n, "mean_s": round(secs[k] / n, 3)} for k, n in counts.items()}, sort_keys=True)
