"""Terminals: pseudo-terminal pairs held by the tree, and the terminal of a
--shell-job.

*Pty pairs.*  A master (an open of /dev/ptmx) and its slave (/dev/pts/N)
both held inside the tree are one pair.  Its state is read once, through a
copy of a description the tree holds (pidfd_getfd; opening the master by
path would make a new pty): the slave's termios and window size, the lock
and packet mode, and the bytes queued in each direction.  Queued bytes cannot
be peeked at, so they are read (the tree is frozen) and, when the tree lives
on, written back.  Restore opens /dev/ptmx (in the tree's mount namespace)
until the kernel hands out the dumped index (it gives the lowest free one; a
taken index is a RestoreError, since the name /dev/pts/N is visible), sets
the state (and the slave node's owner, group and mode, which grantpt,
chown and chmod may have changed), re-queues the bytes, and opens each slave description with
TIOCGPTPEER.  A session whose controlling terminal was the slave gets it
back in its leader (TIOCSCTTY, TIOCSPGRP), once the leader's fds are in.

Limits: re-queued input for a canonical-mode slave becomes readable at once
(a partial line is no longer held back until its newline), and a line ended
by the EOF character comes back as a NUL byte.  Only the session leader gets
the controlling terminal back: other processes of that session were forked
before the leader acquired it and have none.  A slave whose master is
outside the tree is an outside terminal (--external tty[...]), the shell's
terminal (--shell-job), or unsupported.

*Orphan pty.*  A container runtime hands the master of the container's
console to a console socket outside the tree.  With --orphan-pts-master (the
RPC's orphan_pts_master, which runc always sets) such a slave is dumped as a
pty of its own: its termios, window size, node and controlling session are
read through the slave.  The restore makes a new pair with the same index
in the tree's devpts and hands the new master to the RPC client in a NOTIFY
"orphan-pts-master" (SCM_RIGHTS), as CRIU does; the runtime passes it on to
its console socket.  Input typed into the slave and not yet read cannot be
put back without the old master, so the dump refuses while there is any;
output the old master has not read stays with the old master.

*Outside terminal.*  `--external tty[RDEV:DEV]` (CRIU's name: st_rdev and
st_dev of the terminal, in hex) at dump marks a terminal from outside the
tree, e.g. a pty slave whose master another program holds: its descriptors
are dumped as references (open flags only).  The restore needs the caller's
terminal in its place, `--inherit-fd fd[N]:tty[RDEV:DEV]` (refused before
anything is created without it); the fd handed in must be a terminal open for
at least the dumped access, and gets the dumped status flags (O_NONBLOCK,
O_APPEND, O_ASYNC: set on the caller's description, which the tree now
shares).  An outside terminal that was a process's controlling terminal is
not one after restore (logged at dump).

*Consoles.*  /dev/console and the virtual consoles (/dev/ttyN, major 4,
minor 0-63) are terminals of the machine, not of the tree: a descriptor of
one is dumped as a reference (path, flags) and reopened by its path at
restore with O_NOCTTY (termios and the queues belong to the device and
stay as they are).  One that was the process's controlling terminal is
refused.

*/dev/tty.*  An open of /dev/tty is tied by the kernel to the terminal that
was its opener's controlling terminal (TIOCGDEV names it); only an open of
/dev/tty by a process that has that terminal makes one.  For a pty of the
tree, restore forks a helper when the pair is made (before any restored
session has it): setsid, TIOCSCTTY on the new slave, one open of /dev/tty
per dumped description (the dumped access and status flags), sent back
over a socketpair, then TIOCNOTTY and exit.  CRIU instead opens /dev/tty in
the restored task once its terminal is back; the helper gives the same
description without an order between tasks (a task of the session that is
not its leader has no terminal after restore, see Limits).  /dev/tty of any
other terminal is refused; with --shell-job it is the shell's terminal.
A session leader whose controlling terminal is a pty of the tree that it
no longer holds open gets it back through a slave fd given to it for the
moment (:func:`restore_controlling`).  One whose terminal is not given
back (a pty whose master is outside the tree, a console) is refused by
:func:`check_controlling`, except with --shell-job or --external for that
terminal.

*Shell job.*  Descriptors of any other terminal are the shell's: with
--shell-job they are not dumped as objects; on restore they become the
terminal of `refcr restore`'s caller (its stdin), and if the dumped job was
the terminal's foreground process group it is made so again.
"""
from __future__ import annotations

import fcntl
import os
import select
import signal
import socket
import stat as stat_mod
import struct
import termios
import time
from dataclasses import dataclass, field

from refcr.errors import OptionError, RestoreError, UnsupportedObject
from refcr.external import canonical
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.log import log
from refcr.pb import files_pb2, tty_pb2
from refcr.ptrace import native, proc

TTY_MAJORS = {4, 5} | set(range(136, 144))      # vt/serial, /dev/tty+ptmx, pts
PTMX = os.makedev(5, 2)
DEV_TTY, DEV_CONSOLE = os.makedev(5, 0), os.makedev(5, 1)
VT_MAJOR, VT_MINORS = 4, range(0, 64)
PTS_MAJORS = range(136, 144)

TCGETS2, TCSETS2 = 0x802C542A, 0x402C542B
TERMIOS2 = struct.Struct("<4IB19sII")           # iflag oflag cflag lflag line cc[19] ispeed ospeed
TIOCGWINSZ, TIOCSWINSZ = 0x5413, 0x5414
WINSIZE = struct.Struct("<4H")
TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK = 0x80045430, 0x40045431, 0x80045439
TIOCPKT, TIOCGPKT = 0x5420, 0x80045438
TIOCGPTPEER = 0x5441
TIOCSCTTY, TIOCSPGRP, TIOCNOTTY = 0x540E, 0x5410, 0x5422
TIOCGDEV = 0x80045432               # the real terminal behind /dev/tty or /dev/console
FIONREAD = 0x541B
O_LARGEFILE = 0o100000
INT = struct.Struct("<i")
STATUS_FLAGS = os.O_APPEND | os.O_NONBLOCK | os.O_ASYNC
QUIET_L = termios.ICANON | termios.ECHO | termios.ECHOE | termios.ECHOK | termios.ECHONL | \
    termios.ISIG | termios.IEXTEN
QUIET_I = termios.ICRNL | termios.INLCR | termios.IGNCR | termios.ISTRIP | termios.IUCLC | \
    termios.IXON | termios.IXOFF | termios.PARMRK | termios.INPCK
MAX_REQUEUE_WAIT = 5.0


def is_tty(st: os.stat_result) -> bool:
    return stat_mod.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in TTY_MAJORS


def pts_index(rdev: int) -> int | None:
    if os.major(rdev) in PTS_MAJORS:
        return (os.major(rdev) - PTS_MAJORS[0]) * 256 + os.minor(rdev)
    return None


def pts_rdev(index: int) -> int:
    return os.makedev(PTS_MAJORS[0] + index // 256, index % 256)


def _get_int(fd: int, req: int) -> int:
    return INT.unpack(fcntl.ioctl(fd, req, bytes(INT.size)))[0]


def _set_int(fd: int, req: int, value: int) -> None:
    fcntl.ioctl(fd, req, INT.pack(value))


def _inq(fd: int) -> int:
    return _get_int(fd, FIONREAD)


def _quiet(tio: bytes) -> bytes:
    """The termios with no line editing, echo, signals or translation."""
    i, o, c, lf, line, cc, isp, osp = TERMIOS2.unpack(tio)
    return TERMIOS2.pack(i & ~QUIET_I, o & ~termios.OPOST, c, lf & ~QUIET_L, line, cc, isp, osp)


def _read_n(fd: int, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _write_all(fd: int, data: bytes, what: str) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except OSError as exc:
            raise RestoreError(f"{what}: cannot re-queue {len(data)} bytes: {exc.strerror}") from exc


def requeue(master: int, slave: int, tio: bytes, to_slave: bytes, to_master: bytes, what: str) -> None:
    """Put queued bytes back in both directions, untouched by the line
    discipline (quiet termios while they pass), then set `tio`."""
    fcntl.ioctl(slave, TCSETS2, _quiet(tio))
    if to_slave or to_master:
        _write_all(master, to_slave, what)
        _write_all(slave, to_master, what)
        deadline = time.monotonic() + MAX_REQUEUE_WAIT
        # The bytes reach the other side from a work queue; poll() flushes it.
        while _inq(slave) < len(to_slave) or _inq(master) < len(to_master):
            if time.monotonic() > deadline:
                raise RestoreError(f"{what}: re-queued bytes did not arrive")
            select.select([slave, master], [], [], 0.01)
    fcntl.ioctl(slave, TCSETS2, tio)


# ------------------------------------------------------------------ dump --

def _tree(ctx: DumpFiles) -> list[int]:
    """Host pids of the (frozen) tree."""
    if "tree" not in ctx.extra.setdefault("tty", {}):
        pids, queue = [], [ctx.opts.pid]
        while queue:
            pid = queue.pop(0)
            pids.append(pid)
            try:
                queue.extend(proc.children(pid))
            except OSError:
                pass
        ctx.extra["tty"]["tree"] = pids
    return ctx.extra["tty"]["tree"]


@dataclass
class PtyEnds:
    """Where the tree holds the ends of one pty: (host pid, fd) lists."""

    masters: list[tuple[int, int]] = field(default_factory=list)
    slaves: list[tuple[int, int]] = field(default_factory=list)


def _pty_ends(ctx: DumpFiles) -> dict[int, PtyEnds]:
    state = ctx.extra.setdefault("tty", {})
    if "ends" not in state:
        ends: dict[int, PtyEnds] = {}
        for pid in _tree(ctx):
            try:
                fds = proc.fds(pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    st = os.stat(proc.path(pid, "fd", str(fd)))
                except OSError:
                    continue
                if not stat_mod.S_ISCHR(st.st_mode):
                    continue
                if st.st_rdev == PTMX:
                    index = proc.fdinfo(pid, fd).get("tty-index")
                    if index is not None:
                        ends.setdefault(int(index), PtyEnds()).masters.append((pid, fd))
                elif (n := pts_index(st.st_rdev)) is not None:
                    ends.setdefault(n, PtyEnds()).slaves.append((pid, fd))
        state["ends"] = ends
    return state["ends"]


def _stat_fields(pid: int) -> list[str]:
    with open(proc.path(pid, "stat")) as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()      # [0] is field 3


def _inner_pgid(ctx: DumpFiles, host_pgid: int) -> int:
    """The tree's own number for a host process group, 0 if outside the tree."""
    for pid in _tree(ctx):
        if proc.stat(pid).pgid == host_pgid:
            return int(proc.status(pid)["NSpgid"].split()[-1])
    return 0


def _controlling(ctx: DumpFiles, index: int, ends: PtyEnds) -> tuple[int, int]:
    """(inner sid, inner foreground pgid) of the session that has the slave
    as its controlling terminal, if that session is in the tree."""
    rdev = pts_rdev(index)
    for pid in _tree(ctx):
        f = _stat_fields(pid)
        if int(f[7 - 3]) != rdev:
            continue
        st = proc.status(pid)
        sid = int(st["NSsid"].split()[-1])
        if int(st["NSpid"].split()[-1]) != sid:
            continue
        return sid, _inner_pgid(ctx, int(f[8 - 3]))
    return 0, 0


def dump_orphan(ctx: DumpFiles, index: int, ends: PtyEnds, t: FdTarget) -> tty_pb2.PtyPairState:
    """A pty whose master is outside the tree (see the module docstring), through its slave."""
    slave = native.copy_fd(*ends.slaves[0])
    try:
        tio = fcntl.ioctl(slave, TCGETS2, bytes(TERMIOS2.size))
        row, col, xp, yp = WINSIZE.unpack(fcntl.ioctl(slave, TIOCGWINSZ, bytes(WINSIZE.size)))
        s = tty_pb2.PtyPairState(termios=tio, ws_row=row, ws_col=col, ws_xpixel=xp, ws_ypixel=yp, orphan=True)
        queued = _inq(slave)
        if queued:
            raise UnsupportedObject(f"{describe(t)}: {queued} bytes typed into /dev/pts/{index} are not read "
                                    "yet, and its master is outside the tree (they cannot be put back); "
                                    "retry once the tree has read them")
        s.session, s.fg_pgid = _controlling(ctx, index, ends)
        st = os.fstat(slave)
        s.has_node, s.slave_uid, s.slave_gid = True, st.st_uid, st.st_gid
        s.slave_mode = stat_mod.S_IMODE(st.st_mode)
    finally:
        os.close(slave)
    return s


def dump_pair(ctx: DumpFiles, index: int, ends: PtyEnds, t: FdTarget) -> tty_pb2.PtyPairState:
    if not ends.masters:
        if ctx.opts.orphan_pts_master and ends.slaves:
            return dump_orphan(ctx, index, ends, t)
        raise UnsupportedObject(f"{describe(t)}: the master of /dev/pts/{index} is outside the tree"
                                " (dump with --orphan-pts-master if a container runtime holds it)")
    master = native.copy_fd(*ends.masters[0])
    slave = native.copy_fd(*ends.slaves[0]) if ends.slaves else -1
    try:
        tio = fcntl.ioctl(master, TCGETS2, bytes(TERMIOS2.size))
        row, col, xp, yp = WINSIZE.unpack(fcntl.ioctl(master, TIOCGWINSZ, bytes(WINSIZE.size)))
        s = tty_pb2.PtyPairState(termios=tio, ws_row=row, ws_col=col, ws_xpixel=xp, ws_ypixel=yp,
                                 locked=bool(_get_int(master, TIOCGPTLCK)),
                                 packet=bool(_get_int(master, TIOCGPKT)))
        if slave >= 0:
            if s.packet:
                _set_int(master, TIOCPKT, 0)
            s.to_master = _read_n(master, _inq(master))
            fcntl.ioctl(slave, TCSETS2, _quiet(tio))        # every queued byte readable
            s.to_slave = _read_n(slave, _inq(slave))
            # The tree may live on (or the dump fail): put the bytes back.
            requeue(master, slave, tio, s.to_slave, s.to_master, f"/dev/pts/{index}")
            if s.packet:
                _set_int(master, TIOCPKT, 1)
        elif _inq(master):
            log.warning("%s: bytes queued for the master of /dev/pts/%d are not kept "
                        "(no slave in the tree)", describe(t), index)
        s.session, s.fg_pgid = _controlling(ctx, index, ends)
        _dump_node(master, slave, s)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return s


def _dump_node(master: int, slave: int, s: tty_pb2.PtyPairState) -> None:
    """Owner and mode of the slave's node (through a slave of the tree, else
    one opened from the master just for fstat; a locked pty has none)."""
    peer = slave
    if peer < 0:
        try:
            peer = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return
    try:
        st = os.fstat(peer)
    finally:
        if peer != slave:
            os.close(peer)
    s.has_node, s.slave_uid, s.slave_gid, s.slave_mode = True, st.st_uid, st.st_gid, stat_mod.S_IMODE(st.st_mode)


def _restore_node(slave: int, s: tty_pb2.PtyPairState) -> None:
    if s.has_node:
        os.fchown(slave, s.slave_uid, s.slave_gid)
        os.fchmod(slave, s.slave_mode)


class PtyKind:
    field = "pty"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        if not stat_mod.S_ISCHR(t.st.st_mode):
            return False
        if t.st.st_rdev == PTMX:
            return True
        n = pts_index(t.st.st_rdev)
        if n is None:
            return False
        if _pty_ends(ctx).get(n, PtyEnds()).masters:
            return True
        # an orphan slave, unless --external names it as the caller's terminal
        return ctx.opts.orphan_pts_master and not ExtTtyKind().claims(t, ctx)

    def dump(self, t: FdTarget, ctx: DumpFiles) -> tty_pb2.PtyEntry:
        master = t.st.st_rdev == PTMX
        if master:
            index = int(t.info.get("tty-index", "-1"))
            if index < 0:
                raise UnsupportedObject(f"{describe(t)}: the kernel does not tell the pty's index")
        else:
            index = pts_index(t.st.st_rdev)
        e = tty_pb2.PtyEntry(index=index, master=master, flags=t.flags)
        done = ctx.extra.setdefault("tty", {}).setdefault("pairs", set())
        if index not in done:
            ends = _pty_ends(ctx).get(index, PtyEnds())
            e.pair.CopyFrom(dump_pair(ctx, index, ends, t))
            done.add(index)
        return e

    # -- restore --
    def open(self, e: tty_pb2.PtyEntry, ctx: RestoreFiles) -> int:
        pair = NewPty.get(ctx, e.index)
        if e.master:
            fd = os.dup(pair.master)
        else:
            fd = pair.open_slave(e.flags & (os.O_ACCMODE | O_LARGEFILE))
        fcntl.fcntl(fd, fcntl.F_SETFL, e.flags & STATUS_FLAGS)
        return fd

    def after_install(self, e: tty_pb2.PtyEntry, fd: int, puppet, ctx: RestoreFiles) -> None:
        pair = NewPty.get(ctx, e.index)
        if not e.master and pair.state.session == puppet.vpid:
            pair.make_controlling(puppet, fd)

    def resource(self, e: tty_pb2.PtyEntry) -> str:
        return f"/dev/pts/{e.index}" if not e.master else f"ptmx[{e.index}]"


@dataclass
class NewPty:
    """A pty pair recreated in refcr with the dumped index and state."""

    index: int
    master: int
    state: tty_pb2.PtyPairState
    ctty_done: bool = False
    dev_ttys: dict[int, int] = field(default_factory=dict)    # FileEntry id -> /dev/tty description

    @classmethod
    def get(cls, ctx: RestoreFiles, index: int) -> "NewPty":
        pairs = ctx.extra.setdefault("pty", {})
        if index not in pairs:
            pairs[index] = cls.make(ctx, index)
        return pairs[index]

    @classmethod
    def make(cls, ctx: RestoreFiles, index: int) -> "NewPty":
        state = next((e.pty.pair for e in ctx.entries.values()
                      if e.WhichOneof("file") == "pty" and e.pty.index == index and e.pty.HasField("pair")),
                     None)
        if state is None:
            raise RestoreError(f"files.img: no state for pty {index}")
        what = f"/dev/pts/{index}"
        hand = ctx.opts.hand_fd
        if state.orphan and hand is None:
            raise RestoreError(f"{what}: its master was outside the tree (dumped with --orphan-pts-master); "
                               "the new one must go to an RPC client (refcr swrk, refcr service)")
        made = ctx.extra.get("pty-made", {})
        if index in made:       # made with the mount tree, for a bind of its slave (ns/mntns.py)
            master = made.pop(index)
        else:
            master = ctx.keep(_open_index(ctx.resolve("/dev/ptmx"), index))
        pair = cls(index, master, state)
        try:
            _set_int(master, TIOCSPTLCK, 0)
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise RestoreError(f"{what}: cannot open the slave: {exc.strerror}") from exc
        try:
            row, col, xp, yp = state.ws_row, state.ws_col, state.ws_xpixel, state.ws_ypixel
            fcntl.ioctl(master, TIOCSWINSZ, WINSIZE.pack(row, col, xp, yp))
            if len(state.termios) != TERMIOS2.size:
                raise RestoreError(f"files.img: pty {index}: bad termios")
            requeue(master, slave, state.termios, state.to_slave, state.to_master, what)
            _restore_node(slave, state)
            if state.packet:
                _set_int(master, TIOCPKT, 1)
            if state.locked:
                _set_int(master, TIOCSPTLCK, 1)
        except OSError as exc:
            raise RestoreError(f"{what}: cannot set its state: {exc.strerror}") from exc
        finally:
            os.close(slave)
        if state.orphan and hand is not None:
            hand("orphan-pts-master", master)
        # every /dev/tty description of this pty now, while no session has it yet (open_dev_tty)
        ttys = [e for e in ctx.entries.values() if e.WhichOneof("file") == "dev_tty"
                and pts_index(e.dev_tty.tty_rdev) == index]
        if ttys:
            fds = pair.open_dev_tty(ctx, [e.dev_tty.flags for e in ttys])
            pair.dev_ttys = {e.id: ctx.keep(fd) for e, fd in zip(ttys, fds, strict=True)}
        return pair

    def make_controlling(self, puppet, fd: int) -> None:
        """Make the slave (fd N of the session leader *puppet*) its
        controlling terminal again, with its foreground group (once)."""
        if self.ctty_done:
            return
        r, s = puppet.remote, self.state
        ret = r.call("ioctl", fd, TIOCSCTTY, 0)
        if ret < 0:
            raise RestoreError(f"process {puppet.vpid}: cannot make /dev/pts/{self.index} its controlling "
                               f"terminal: {os.strerror(-ret)}")
        if s.fg_pgid:
            addr, = r.put(INT.pack(s.fg_pgid))
            ret = r.call("ioctl", fd, TIOCSPGRP, addr)
            if ret < 0:
                raise RestoreError(f"process {puppet.vpid}: cannot make group {s.fg_pgid} the foreground "
                                   f"of /dev/pts/{self.index}: {os.strerror(-ret)}")
        self.ctty_done = True

    def open_dev_tty(self, ctx: RestoreFiles, flags: list[int]) -> list[int]:
        """New descriptions of /dev/tty that reach this pty: opened by a
        helper child of refcr that has the slave as its controlling terminal
        for a moment (setsid, TIOCSCTTY), sent back over a socket, and gives
        it up again (TIOCNOTTY) before the session leader of the tree takes
        it.  The kernel ties a /dev/tty description to the terminal its
        opener had; nothing else can make one.  Done when the pair is made,
        before any session of the tree has it."""
        path = ctx.resolve("/dev/tty")
        slave = self.open_slave(os.O_RDWR)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            pid = os.fork()
            if pid == 0:            # the helper: no Python-level clean-up, only these calls
                code = 1
                try:
                    signal.signal(signal.SIGHUP, signal.SIG_IGN)    # TIOCNOTTY signals its own group
                    os.setsid()
                    fcntl.ioctl(slave, TIOCSCTTY, 0)
                    fds = [os.open(path, (f & (os.O_ACCMODE | STATUS_FLAGS)) | os.O_CLOEXEC) for f in flags]
                    socket.send_fds(theirs, [b"t"], fds)
                    fcntl.ioctl(slave, TIOCNOTTY)
                    code = 0
                finally:
                    os._exit(code)
            theirs.close()
            _, status = os.waitpid(pid, 0)
            _, got, _, _ = socket.recv_fds(ours, 16, len(flags)) if status == 0 else (b"", [], 0, None)
        finally:
            ours.close()
            theirs.close()
            os.close(slave)
        if status != 0 or len(got) != len(flags):
            for fd in got:
                os.close(fd)
            raise RestoreError(f"/dev/pts/{self.index}: cannot open /dev/tty with it as the controlling terminal")
        for fd in got:
            if os.fstat(fd).st_rdev != DEV_TTY:
                raise RestoreError(f"{path} is not /dev/tty (5:0)")
        return got

    def open_slave(self, flags: int) -> int:
        try:
            if self.state.locked:
                _set_int(self.master, TIOCSPTLCK, 0)
            try:
                # the flags stay the description's as given (no O_CLOEXEC here)
                fd = fcntl.ioctl(self.master, TIOCGPTPEER, flags | os.O_NOCTTY)
                os.set_inheritable(fd, False)
                return fd
            finally:
                if self.state.locked:
                    _set_int(self.master, TIOCSPTLCK, 1)
        except OSError as exc:
            raise RestoreError(f"/dev/pts/{self.index}: cannot open the slave: {exc.strerror}") from exc


def _open_index(ptmx: str, index: int) -> int:
    """Open ptmx until the kernel gives `index` (it hands out the lowest free one)."""
    held: list[int] = []
    try:
        for _ in range(index + 1):
            try:
                fd = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            except OSError as exc:
                raise RestoreError(f"cannot open {ptmx}: {exc.strerror}") from exc
            got = _get_int(fd, TIOCGPTN)
            if got == index:
                return fd
            held.append(fd)
            if got > index:
                break
        raise RestoreError(f"/dev/pts/{index} is taken by another process; the restored pty needs that index")
    finally:
        for fd in held:
            os.close(fd)


# ------------------------------------------------------- outside terminal --

def ext_name(rdev: int, dev: int) -> str:
    """CRIU's name of a terminal: tty[RDEV:DEV], both in hex."""
    return f"tty[{rdev:x}:{dev:x}]"


def _ext_options(external: list[str]) -> dict[str, str]:
    """The --external tty[...] options (checked by external.check_external), by canonical name."""
    return {canonical(opt): opt for opt in external if opt.startswith("tty[")}


class ExtTtyKind:
    """A terminal named by --external tty[RDEV:DEV]: a reference at dump,
    the caller's --inherit-fd at restore."""

    field = "ext_tty"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return bool(ctx.opts.external) and is_tty(t.st) and \
            ext_name(t.st.st_rdev, t.st.st_dev) in _ext_options(ctx.opts.external)

    def dump(self, t: FdTarget, ctx: DumpFiles) -> tty_pb2.ExtTtyEntry:
        if int(_stat_fields(t.pid)[7 - 3]) == t.st.st_rdev:
            log.warning("%s: its controlling terminal %s is outside the tree: after restore it has no "
                        "controlling terminal", describe(t), ext_name(t.st.st_rdev, t.st.st_dev))
        return tty_pb2.ExtTtyEntry(flags=t.flags, rdev=t.st.st_rdev, dev=t.st.st_dev)

    def open(self, e: tty_pb2.ExtTtyEntry, ctx: RestoreFiles) -> int:
        raise _not_inherited(self.resource(e))

    def adopt(self, e: tty_pb2.ExtTtyEntry, fd: int) -> None:
        """The caller's terminal handed in for e: usable as the dumped one
        was, and given its status flags."""
        name = self.resource(e)
        if not os.isatty(fd):
            raise RestoreError(f"--inherit-fd fd[N]:{name}: the fd handed in is not a terminal")
        have = fcntl.fcntl(fd, fcntl.F_GETFL)
        want = e.flags & os.O_ACCMODE
        if (have & os.O_ACCMODE) not in (want, os.O_RDWR):
            raise RestoreError(f"--inherit-fd fd[N]:{name}: the terminal handed in is open with access mode "
                               f"{have & os.O_ACCMODE}, the dumped one {want}")
        fcntl.fcntl(fd, fcntl.F_SETFL, (have & ~STATUS_FLAGS) | (e.flags & STATUS_FLAGS))

    def resource(self, e: tty_pb2.ExtTtyEntry) -> str:
        return ext_name(e.rdev, e.dev)


def check_ext_dump(ctx: DumpFiles) -> None:
    """Every --external tty[...] of a dump named a terminal the tree holds."""
    dumped = {ext_name(fe.ext_tty.rdev, fe.ext_tty.dev) for fe in ctx.entries if fe.WhichOneof("file") == "ext_tty"}
    for name, opt in _ext_options(ctx.opts.external).items():
        if name not in dumped:
            raise OptionError(f"--external {opt}: the tree holds no terminal {name} from outside it")


def check_ext_restore(ctx: RestoreFiles) -> None:
    """Every outside terminal of the images has its --inherit-fd: checked
    before anything is created."""
    given = {item.resource for item in ctx.inherited.items}
    for fe in ctx.entries.values():
        if fe.WhichOneof("file") == "ext_tty" and (name := ext_name(fe.ext_tty.rdev, fe.ext_tty.dev)) not in given:
            raise _not_inherited(name)


def _not_inherited(name: str) -> RestoreError:
    return RestoreError(f"the images hold the outside terminal {name} (dumped with --external {name}): "
                        f"restore with --inherit-fd fd[N]:{name}")


# -------------------------------------------------------------- consoles --

def is_console(rdev: int) -> bool:
    return rdev == DEV_CONSOLE or (os.major(rdev) == VT_MAJOR and os.minor(rdev) in VT_MINORS)


def tty_name(rdev: int) -> str:
    if rdev == DEV_CONSOLE:
        return "/dev/console"
    if rdev == DEV_TTY:
        return "/dev/tty"
    if os.major(rdev) == VT_MAJOR and os.minor(rdev) in VT_MINORS:
        return f"/dev/tty{os.minor(rdev)}"
    n = pts_index(rdev)
    return f"/dev/pts/{n}" if n is not None else f"terminal {os.major(rdev)}:{os.minor(rdev)}"


class DevTtyKind:
    """An fd of /dev/tty.  What it reaches is the terminal that was its
    opener's controlling terminal (TIOCGDEV tells); refcr gives it back for
    a pty of the tree (NewPty.open_dev_tty), refuses it for any other
    terminal, and with --shell-job leaves it to ShellJobTtyKind (the caller's
    terminal)."""

    field = "dev_tty"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return stat_mod.S_ISCHR(t.st.st_mode) and t.st.st_rdev == DEV_TTY and not ctx.opts.shell_job

    def dump(self, t: FdTarget, ctx: DumpFiles) -> tty_pb2.DevTtyEntry:
        copy = native.copy_fd(t.pid, t.fd)
        try:
            rdev = _get_int(copy, TIOCGDEV) & 0xFFFFFFFF
        except OSError as exc:
            raise UnsupportedObject(f"{describe(t)}: which terminal /dev/tty reaches is unknown: "
                                    f"{exc.strerror}") from None
        finally:
            os.close(copy)
        n = pts_index(rdev)
        if n is None or not _pty_ends(ctx).get(n, PtyEnds()).masters:
            raise UnsupportedObject(f"{describe(t)}: /dev/tty reaches {tty_name(rdev)}, which is not a pty of "
                                    "the tree: refcr cannot open it again (--shell-job for the shell's terminal)")
        return tty_pb2.DevTtyEntry(flags=t.flags, tty_rdev=rdev)

    def open(self, e: tty_pb2.DevTtyEntry, ctx: RestoreFiles) -> int:
        n = pts_index(e.tty_rdev)
        if n is None:
            raise RestoreError(f"files.img: /dev/tty of {tty_name(e.tty_rdev)}, which is no pty")
        made = NewPty.get(ctx, n).dev_ttys
        if ctx.opening not in made:
            raise RestoreError(f"files.img: /dev/tty entry {ctx.opening} was not opened with /dev/pts/{n}")
        return os.dup(made[ctx.opening])

    def resource(self, e: tty_pb2.DevTtyEntry) -> str:
        return "/dev/tty"


def restore_controlling(ctx: RestoreFiles, puppet) -> None:
    """A session leader whose controlling terminal is a pty of the tree that
    it holds no fd of (closed after TIOCSCTTY) gets it back through a slave
    fd given to it for the moment (its fds are in: PtyKind.after_install
    did it if it holds one)."""
    indexes = {e.pty.index for e in ctx.entries.values() if e.WhichOneof("file") == "pty"
               and e.pty.HasField("pair") and e.pty.pair.session == puppet.vpid}
    for index in sorted(indexes):
        pair = NewPty.get(ctx, index)
        if pair.ctty_done:
            continue
        local = pair.open_slave(os.O_RDWR)
        try:
            fd = puppet.install_fd(local)
        finally:
            os.close(local)
        try:
            pair.make_controlling(puppet, fd)
        finally:
            puppet.remote.call("close", fd)


class ConsoleTtyKind:
    field = "console_tty"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        if not stat_mod.S_ISCHR(t.st.st_mode):
            return False
        if not is_console(t.st.st_rdev):
            return False
        ctty = int(_stat_fields(t.pid)[7 - 3]) == t.st.st_rdev
        return not (ctty and ctx.opts.shell_job)    # the shell's console: ShellJobTtyKind

    def dump(self, t: FdTarget, ctx: DumpFiles) -> tty_pb2.ConsoleTtyEntry:
        if not t.link.startswith("/dev/"):
            raise UnsupportedObject(f"{describe(t)}: {tty_name(t.st.st_rdev)} is not reachable by its path")
        return tty_pb2.ConsoleTtyEntry(path=t.link, flags=t.flags, rdev=t.st.st_rdev)

    def open(self, e: tty_pb2.ConsoleTtyEntry, ctx: RestoreFiles) -> int:
        flags = (e.flags & (os.O_ACCMODE | STATUS_FLAGS)) | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(ctx.resolve(e.path), flags)
        except OSError as exc:
            raise RestoreError(f"cannot reopen {e.path}: {exc.strerror}") from None
        if os.fstat(fd).st_rdev != e.rdev:
            os.close(fd)
            raise RestoreError(f"{e.path} is not the device it was at the dump "
                               f"({os.major(e.rdev)}:{os.minor(e.rdev)})")
        return fd


def check_controlling(ctx: DumpFiles, pids: list[int]) -> None:
    """Every session leader of the tree with a controlling terminal gets it
    back, or the dump is refused naming it (nothing is lost silently)."""
    if ctx.opts.shell_job:
        return
    external = _ext_options(ctx.opts.external) if ctx.opts.external else set()
    ends = None
    for pid in pids:
        try:
            st = proc.stat(pid)
        except OSError:
            continue
        if not st.tty_nr or st.sid != pid:
            continue
        n = pts_index(st.tty_nr)
        if n is not None:
            ends = _pty_ends(ctx) if ends is None else ends
            pair = ends.get(n, PtyEnds())
            if pair.masters or (ctx.opts.orphan_pts_master and any(p == pid for p, _ in pair.slaves)):
                continue                    # dump_pair / dump_orphan give it back (or refuse there)
        held = [os.stat(proc.path(pid, "fd", str(fd))) for fd in _fds(pid)]
        if any(ext_name(s.st_rdev, s.st_dev) in external for s in held if s.st_rdev == st.tty_nr):
            continue                        # --external tty[...]: logged by ExtTtyKind
        why = "its master is outside the tree" if n is not None else "not a pty of the tree"
        raise UnsupportedObject(f"process {pid}: its controlling terminal {tty_name(st.tty_nr)} is not "
                                f"given back by refcr ({why})")


def _fds(pid: int) -> list[int]:
    try:
        return proc.fds(pid)
    except OSError:
        return []


# ------------------------------------------------------------ shell job --

class ShellJobTtyKind:
    field = "shell_job_tty"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        if not is_tty(t.st):
            return False
        if not ctx.opts.shell_job:
            raise UnsupportedObject(f"{describe(t)} is a terminal not held by the dumped tree; dump with "
                                    f"--external {ext_name(t.st.st_rdev, t.st.st_dev)} to hand one in at restore, "
                                    "or --shell-job if the process is a job of the shell you run refcr from"
                                    + (", or --orphan-pts-master if a container runtime holds its master"
                                       if pts_index(t.st.st_rdev) is not None else ""))
        return True

    def dump(self, t: FdTarget, ctx: DumpFiles) -> tty_pb2.ShellJobTtyEntry:
        e = tty_pb2.ShellJobTtyEntry(flags=t.flags, rdev=t.st.st_rdev)
        f = _stat_fields(t.pid)
        tty_nr, tpgid = int(f[7 - 3]), int(f[8 - 3])
        if tty_nr == t.st.st_rdev and tpgid > 0:
            pgid = _inner_pgid(ctx, tpgid)
            if pgid:
                e.foreground, e.fg_pgid = True, pgid
        return e

    def open(self, e: tty_pb2.ShellJobTtyEntry, ctx: RestoreFiles) -> int:
        return _caller_tty(ctx)

    def after_install(self, e: tty_pb2.ShellJobTtyEntry, fd: int, puppet, ctx: RestoreFiles) -> None:
        done = ctx.extra.setdefault("shell-tty", {})
        if not e.foreground or done.get("fg"):
            return
        r = puppet.remote
        addr, = r.put(INT.pack(e.fg_pgid))
        ret = r.call("ioctl", fd, TIOCSPGRP, addr)      # SIGTTOU is blocked in a puppet
        if ret < 0:
            log.warning("process %d: cannot make group %d the foreground of the terminal: %s",
                        puppet.vpid, e.fg_pgid, os.strerror(-ret))
            return
        done["fg"] = True

    def resource(self, e: tty_pb2.ShellJobTtyEntry) -> str:
        return f"tty[{os.major(e.rdev)}:{os.minor(e.rdev)}]"


def _caller_tty(ctx: RestoreFiles) -> int:
    if not ctx.opts.shell_job:
        raise RestoreError("the images hold a shell job (a process on a terminal): restore with --shell-job")
    if not os.isatty(0):
        raise RestoreError("--shell-job restore needs a terminal on standard input")
    return os.dup(0)


class ShellTtyKind:
    """Images of earlier versions: the shell's terminal without foreground."""

    field = "shell_tty"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return False

    def dump(self, t: FdTarget, ctx: DumpFiles) -> files_pb2.ShellTtyEntry:
        raise AssertionError("not used for dumps")

    def open(self, e: files_pb2.ShellTtyEntry, ctx: RestoreFiles) -> int:
        return _caller_tty(ctx)


KINDS = [PtyKind(), ExtTtyKind(), DevTtyKind(), ConsoleTtyKind(), ShellJobTtyKind(), ShellTtyKind()]
