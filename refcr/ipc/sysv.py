"""The IPC namespace: SysV shared memory segments, semaphore sets and message
queues, plus the namespace's own sysctls.

Both sides run in a short-lived forked child of refcr that joins the IPC
namespace with setns(2); refcr itself never changes namespace.  The child does
the whole job (reads or writes the images through the inherited directory fd)
and reports back through a pipe: a small JSON summary, or the error.

Dump (:func:`dump`), every object of the namespace of a process:
  * shm: IPC_STAT, then an SHM_RDONLY attach of the segment; only its allocated
    parts (SEEK_DATA/SEEK_HOLE on the attach's file from /proc/self/map_files)
    are read, so a sparse segment stays sparse and no page gets allocated.
  * sem: IPC_STAT, GETALL, GETPID per semaphore.
  * msg: IPC_STAT, then every queued message copied in order, without
    dequeuing it, with msgrcv(MSG_COPY | IPC_NOWAIT, index).
  * the sysctls kernel.{shm*,msg*,sem,*_next_id} and fs.mqueue.*.

Restore (:func:`restore`), into the fresh namespace of a puppet: the limits are
first raised to what the objects need, then every object is created with its
original id (kernel.*_next_id, consumed by the next *get), its key, and as its
creator (euid/egid switched to cuid/cgid for the *get); contents go back
(shm pages, SETALL, msgsnd in order), then IPC_SET puts back owner, mode and
qbytes; last the sysctls get exactly their dumped values.

Attachments (:func:`sysvshm_attach`): an attached segment is a mapping named
``/SYSV%08x (deleted)`` whose inode is the shmid; restore re-attaches it in the
puppet with an injected shmat at the same address.

What is not restored: time stamps and last pids (the kernel sets them), the
semaphore undo lists of tasks (semadj), POSIX message queues.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import struct
from collections.abc import Callable, Iterator
from typing import Any

from refcr.errors import DumpError, RefcrError, RestoreError, UnsupportedObject
from refcr.images.imagedir import ImageDir
from refcr.log import log
from refcr.pb import ipc_pb2, mm_pb2
from refcr.ptrace import native, proc
from refcr.ptrace.syscalls import PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, page_align_up
from refcr.ptrace.tracee import Remote

# <sys/ipc.h>, <sys/shm.h>, <sys/sem.h>, <sys/msg.h> (x86_64)
IPC_PRIVATE = 0
IPC_CREAT, IPC_EXCL, IPC_NOWAIT = 0o1000, 0o2000, 0o4000
IPC_RMID, IPC_SET, IPC_STAT = 0, 1, 2
SHM_RDONLY, SHM_REMAP, SHM_EXEC = 0o10000, 0o40000, 0o100000
SHM_LOCK = 11
SHM_DEST, SHM_LOCKED = 0o1000, 0o2000
GETPID, GETALL, SETALL = 11, 13, 17
MSG_COPY = 0o40000
PERM_MASK = 0o777

# struct ipc_perm / shmid_ds / semid_ds / msqid_ds as glibc and the kernel
# (ipc64_perm, *id64_ds) lay them out on x86_64.
_PERM = struct.Struct("<iIIIII")        # key uid gid cuid cgid mode, at 0
_DS_SIZE = 128                          # >= every *_ds
_SHM_SEGSZ, _SHM_CPID, _SHM_LPID, _SHM_NATTCH = 48, 80, 84, 88
_SEM_NSEMS = 80
_MSG_CBYTES, _MSG_QNUM, _MSG_QBYTES, _MSG_LSPID, _MSG_LRPID = 72, 80, 88, 96, 100

READ_CHUNK = 8 << 20
SYSV_NAME_RE = re.compile(r"/SYSV([0-9a-f]{8}) \(deleted\)")
MAX_NEXT_ID = (1 << 31) - 1

_libc = ctypes.CDLL(None, use_errno=True)
_c = ctypes
_libc.shmget.argtypes = [_c.c_int, _c.c_size_t, _c.c_int]
_libc.shmat.argtypes = [_c.c_int, _c.c_void_p, _c.c_int]
_libc.shmat.restype = _c.c_void_p
_libc.shmdt.argtypes = [_c.c_void_p]
_libc.shmctl.argtypes = [_c.c_int, _c.c_int, _c.c_void_p]
_libc.semget.argtypes = [_c.c_int, _c.c_int, _c.c_int]
_libc.semctl.argtypes = [_c.c_int, _c.c_int, _c.c_int, _c.c_void_p]   # variadic; the 4th is a pointer here
_libc.msgget.argtypes = [_c.c_int, _c.c_int]
_libc.msgctl.argtypes = [_c.c_int, _c.c_int, _c.c_void_p]
_libc.msgsnd.argtypes = [_c.c_int, _c.c_void_p, _c.c_size_t, _c.c_int]
_libc.msgrcv.argtypes = [_c.c_int, _c.c_void_p, _c.c_size_t, _c.c_long, _c.c_int]
_libc.msgrcv.restype = _c.c_ssize_t


def _ok(ret: int, what: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), what)
    return ret


def _signed32(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


# ------------------------------------------------------------ namespace ---

# IpcNsEntry field -> sysctl path, in the order they are written back
_SYSCTLS = (
    ("shmmax", "kernel/shmmax"), ("shmall", "kernel/shmall"), ("shmmni", "kernel/shmmni"),
    ("msgmax", "kernel/msgmax"), ("msgmnb", "kernel/msgmnb"), ("msgmni", "kernel/msgmni"),
    ("mq_queues_max", "fs/mqueue/queues_max"), ("mq_msg_max", "fs/mqueue/msg_max"),
    ("mq_msgsize_max", "fs/mqueue/msgsize_max"), ("mq_msg_default", "fs/mqueue/msg_default"),
    ("mq_msgsize_default", "fs/mqueue/msgsize_default"),
)
_NEXT_IDS = (("shm_next_id", "kernel/shm_next_id"), ("sem_next_id", "kernel/sem_next_id"),
             ("msg_next_id", "kernel/msg_next_id"))


def _sysctl_read(name: str) -> str | None:
    try:
        with open(f"/proc/sys/{name}") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def _sysctl_write(name: str, value: str) -> None:
    """Written as the file's owner: in a namespace of a user namespace whose
    root is not refcr's uid (a rootless tree, kernel/userns.py), the kernel
    lets only that root write the namespace's IPC sysctls."""
    path = f"/proc/sys/{name}"
    owner = os.stat(path).st_uid
    try:
        with _as_euid(owner):
            with open(path, "w") as f:
                f.write(value)
    except OSError as e:
        raise OSError(e.errno, e.strerror, f"write {value!r} to /proc/sys/{name}") from None


@contextlib.contextmanager
def _as_euid(uid: int) -> Iterator[None]:
    """Effective uid *uid* for a moment (root's capabilities come back with euid 0)."""
    euid = os.geteuid()
    if uid == euid:
        yield
        return
    os.setresuid(-1, uid, -1)
    try:
        yield
    finally:
        os.setresuid(-1, euid, -1)


def _dump_ns() -> ipc_pb2.IpcNsEntry:
    e = ipc_pb2.IpcNsEntry()
    for field, name in _SYSCTLS + _NEXT_IDS + (("shm_rmid_forced", "kernel/shm_rmid_forced"),):
        value = _sysctl_read(name)
        if value is not None:
            setattr(e, field, int(value))
    sem = _sysctl_read("kernel/sem")
    if sem is not None:
        e.sem.extend(int(v) for v in sem.split())
    return e


def _ids(kind: str) -> list[int]:
    """Ids of every object of a kind in the current IPC namespace."""
    with open(f"/proc/sysvipc/{kind}") as f:
        lines = f.read().splitlines()[1:]
    return sorted(int(line.split()[1]) for line in lines if line.strip())


# ----------------------------------------------------------------- stat ---

def _stat(ctl: Callable[..., int], kind: str, id: int) -> bytes | None:
    """IPC_STAT of one object, or None if it went away meanwhile."""
    buf = ctypes.create_string_buffer(_DS_SIZE)
    if kind == "sem":
        ret = ctl(id, 0, IPC_STAT, buf)
    else:
        ret = ctl(id, IPC_STAT, buf)
    if ret == -1:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.EIDRM):
            return None
        raise OSError(err, os.strerror(err), f"{kind}ctl({id}, IPC_STAT)")
    return buf.raw


def _perm(ds: bytes) -> ipc_pb2.IpcPerm:
    key, uid, gid, cuid, cgid, mode = _PERM.unpack_from(ds)
    return ipc_pb2.IpcPerm(key=key & 0xFFFFFFFF, uid=uid, gid=gid, cuid=cuid, cgid=cgid, mode=mode)


def _u64(ds: bytes, off: int) -> int:
    return struct.unpack_from("<Q", ds, off)[0]


def _i32(ds: bytes, off: int) -> int:
    return struct.unpack_from("<i", ds, off)[0]


# ----------------------------------------------------------------- dump ---

def _data_ranges(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of the allocated (or swapped) parts of a shmem file."""
    off = 0
    while off < size:
        try:
            data = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:   # nothing allocated past off
                return
            raise
        if data >= size:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
        yield data, hole - data
        off = hole


def _dump_shm(id: int, raw: Any, pos: int) -> ipc_pb2.ShmEntry | None:
    ds = _stat(_libc.shmctl, "shm", id)
    if ds is None:
        return None
    e = ipc_pb2.ShmEntry(id=id, perm=_perm(ds), size=_u64(ds, _SHM_SEGSZ), nattch=_u64(ds, _SHM_NATTCH),
                         cpid=_i32(ds, _SHM_CPID), lpid=_i32(ds, _SHM_LPID), pages_offset=pos)
    addr = _libc.shmat(id, None, SHM_RDONLY)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), f"shmat({id}, SHM_RDONLY)")
    try:
        length = page_align_up(e.size)
        fd = os.open(f"/proc/self/map_files/{addr:x}-{addr + length:x}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            for off, n in _data_ranges(fd, e.size):
                e.data.append(ipc_pb2.ShmRange(offset=off, length=n))
                done = 0
                while done < n:
                    take = min(READ_CHUNK, n - done)
                    raw.write(ctypes.string_at(addr + off + done, take))
                    done += take
        finally:
            os.close(fd)
    finally:
        _libc.shmdt(ctypes.c_void_p(addr))
    return e


def _dump_sem(id: int) -> ipc_pb2.SemEntry | None:
    ds = _stat(_libc.semctl, "sem", id)
    if ds is None:
        return None
    nsems = _u64(ds, _SEM_NSEMS)
    values = (ctypes.c_ushort * nsems)()
    _ok(_libc.semctl(id, 0, GETALL, values), f"semctl({id}, GETALL)")
    e = ipc_pb2.SemEntry(id=id, perm=_perm(ds), values=list(values))
    e.pids.extend(_ok(_libc.semctl(id, i, GETPID, None), f"semctl({id}, {i}, GETPID)") for i in range(nsems))
    return e


def _dump_msg(id: int, msgmax: int) -> ipc_pb2.MsgEntry | None:
    ds = _stat(_libc.msgctl, "msg", id)
    if ds is None:
        return None
    e = ipc_pb2.MsgEntry(id=id, perm=_perm(ds), qbytes=_u64(ds, _MSG_QBYTES),
                         lspid=_i32(ds, _MSG_LSPID), lrpid=_i32(ds, _MSG_LRPID))
    qnum = _u64(ds, _MSG_QNUM)
    bufsz = max(1, min(msgmax, _u64(ds, _MSG_CBYTES)))  # no message is larger than the whole queue
    buf = ctypes.create_string_buffer(8 + bufsz)
    for index in range(qnum):
        n = _libc.msgrcv(id, buf, bufsz, index, IPC_NOWAIT | MSG_COPY)
        if n == -1:
            err = ctypes.get_errno()
            if err == errno.ENOSYS:
                raise UnsupportedObject("this kernel cannot copy queued SysV messages "
                                        "(msgrcv MSG_COPY needs CONFIG_CHECKPOINT_RESTORE)")
            if err == errno.E2BIG:
                raise UnsupportedObject(f"message queue {id}: message {index} is larger than "
                                        f"kernel.msgmax ({msgmax}) and cannot be copied")
            raise OSError(err, os.strerror(err), f"msgrcv({id}, MSG_COPY, {index})")
        raw = buf.raw[:8 + n]
        e.messages.append(ipc_pb2.MsgMessage(mtype=struct.unpack_from("<q", raw)[0], text=raw[8:]))
    if sum(len(m.text) for m in e.messages) != _u64(ds, _MSG_CBYTES):
        raise DumpError(f"message queue {id} changed while it was dumped (is a process outside the tree using it?)")
    return e


def _dump_in_ns(images: ImageDir) -> dict[str, int]:
    ns = _dump_ns()
    shms: list[ipc_pb2.ShmEntry] = []
    with images.open_raw("ipc-shm-pages", id=None, mode="wb") as raw:
        pos = 0
        for id in _ids("shm"):
            e = _dump_shm(id, raw, pos)
            if e is not None:
                shms.append(e)
                pos += sum(r.length for r in e.data)
    sems = [e for e in map(_dump_sem, _ids("sem")) if e is not None]
    msgmax = ns.msgmax if ns.HasField("msgmax") else 8192
    msgs = [e for e in (_dump_msg(id, msgmax) for id in _ids("msg")) if e is not None]
    images.write("ipc-ns", [ns])
    images.write("ipc-shm", shms)
    images.write("ipc-sem", sems)
    images.write("ipc-msg", msgs)
    return {"shm": len(shms), "shm_bytes": pos, "sem": len(sems), "msg": len(msgs),
            "messages": sum(len(m.messages) for m in msgs)}


# -------------------------------------------------------------- restore ---

@contextlib.contextmanager
def _as_creator(perm: ipc_pb2.IpcPerm) -> Iterator[None]:
    """Run with euid/egid = the object's creator, so the kernel records it
    as cuid/cgid; the saved ids stay 0, so root comes back afterwards."""
    os.setresgid(-1, perm.cgid, -1)
    try:
        os.setresuid(-1, perm.cuid, -1)
        try:
            yield
        finally:
            os.setresuid(-1, 0, -1)
    finally:
        os.setresgid(-1, 0, -1)


def _create(kind: str, e: Any, get: Callable[[], int]) -> None:
    """Create one object with the id it had: kernel.<kind>_next_id, then *get."""
    if not 0 <= e.id <= MAX_NEXT_ID:
        raise RestoreError(f"ipc-{kind}.img: bad id {e.id}")
    _sysctl_write(f"kernel/{kind}_next_id", str(e.id))
    with _as_creator(e.perm):
        ret = get()
    if ret == -1:
        err = ctypes.get_errno()
        raise RestoreError(f"cannot recreate SysV {kind} {e.id} (key {e.perm.key:#x}): {os.strerror(err)}")
    if ret != e.id:
        raise RestoreError(f"SysV {kind} {e.id} came out with id {ret} (is kernel.{kind}_next_id honoured?)")


def _set_owner(ctl: Callable[..., int], kind: str, id: int, perm: ipc_pb2.IpcPerm, qbytes: int | None = None) -> None:
    """IPC_SET: owner uid/gid, permission bits (and a queue's qbytes)."""
    ds = _stat(ctl, kind, id)
    if ds is None:
        raise RestoreError(f"SysV {kind} {id} vanished during restore")
    buf = ctypes.create_string_buffer(ds, _DS_SIZE)
    struct.pack_into("<II", buf, 4, perm.uid, perm.gid)
    struct.pack_into("<I", buf, 20, perm.mode & PERM_MASK)
    if qbytes is not None:
        struct.pack_into("<Q", buf, _MSG_QBYTES, qbytes)
    ret = ctl(id, 0, IPC_SET, buf) if kind == "sem" else ctl(id, IPC_SET, buf)
    _ok(ret, f"{kind}ctl({id}, IPC_SET)")


def _restore_shm(e: ipc_pb2.ShmEntry, raw: Any) -> None:
    end = 0
    for r in e.data:
        if r.offset < end or r.offset + r.length > e.size:
            raise RestoreError(f"ipc-shm.img: segment {e.id}: bad data range {r.offset}+{r.length}")
        end = r.offset + r.length
    _create("shm", e, lambda: _libc.shmget(_signed32(e.perm.key), e.size,
                                            IPC_CREAT | IPC_EXCL | (e.perm.mode & PERM_MASK)))
    if e.data:
        addr = _libc.shmat(e.id, None, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), f"shmat({e.id})")
        try:
            raw.seek(e.pages_offset)
            for r in e.data:
                done = 0
                while done < r.length:
                    data = raw.read(min(READ_CHUNK, r.length - done))
                    if not data:
                        raise RestoreError(f"ipc-shm-pages.img is shorter than ipc-shm.img says (segment {e.id})")
                    ctypes.memmove(addr + r.offset + done, data, len(data))
                    done += len(data)
        finally:
            _libc.shmdt(ctypes.c_void_p(addr))
    _set_owner(_libc.shmctl, "shm", e.id, e.perm)
    if e.perm.mode & SHM_LOCKED:
        _ok(_libc.shmctl(e.id, SHM_LOCK, None), f"shmctl({e.id}, SHM_LOCK)")


def _restore_sem(e: ipc_pb2.SemEntry) -> None:
    if not e.values:
        raise RestoreError(f"ipc-sem.img: semaphore set {e.id} has no semaphores")
    _create("sem", e, lambda: _libc.semget(_signed32(e.perm.key), len(e.values),
                                            IPC_CREAT | IPC_EXCL | (e.perm.mode & PERM_MASK)))
    if any(v > 0xFFFF for v in e.values):
        raise RestoreError(f"ipc-sem.img: semaphore set {e.id}: value out of range")
    values = (ctypes.c_ushort * len(e.values))(*e.values)
    _ok(_libc.semctl(e.id, 0, SETALL, values), f"semctl({e.id}, SETALL)")
    _set_owner(_libc.semctl, "sem", e.id, e.perm)


def _restore_msg(e: ipc_pb2.MsgEntry) -> None:
    _create("msg", e, lambda: _libc.msgget(_signed32(e.perm.key), IPC_CREAT | IPC_EXCL | (e.perm.mode & PERM_MASK)))
    total = sum(len(m.text) for m in e.messages)
    # room for every message first (root may set qbytes above msgmnb), the real value at the end
    _set_owner(_libc.msgctl, "msg", e.id, e.perm, max(e.qbytes, total, len(e.messages), 1))
    for i, m in enumerate(e.messages):
        if m.mtype <= 0:
            raise RestoreError(f"ipc-msg.img: queue {e.id}: message {i} has type {m.mtype}")
        buf = ctypes.create_string_buffer(struct.pack("<q", m.mtype) + m.text)
        _ok(_libc.msgsnd(e.id, buf, len(m.text), IPC_NOWAIT), f"msgsnd({e.id}, message {i})")
    _set_owner(_libc.msgctl, "msg", e.id, e.perm, e.qbytes)


def _raise_limits(ns: ipc_pb2.IpcNsEntry, shms: list, sems: list, msgs: list) -> None:
    """Make the namespace's limits large enough for every object to be
    recreated (the dumped values may have been lowered after the objects were
    made); the exact values are written last."""
    def at_least(name: str, need: int) -> None:
        cur = int(_sysctl_read(name) or 0)
        if need > cur:
            _sysctl_write(name, str(need))

    at_least("kernel/shmmax", max([e.size for e in shms] + [ns.shmmax]))
    at_least("kernel/shmall", max(sum(page_align_up(e.size) // PAGE_SIZE for e in shms), ns.shmall))
    at_least("kernel/shmmni", max(len(shms), ns.shmmni))
    at_least("kernel/msgmax", max([len(m.text) for e in msgs for m in e.messages] + [ns.msgmax]))
    at_least("kernel/msgmni", max(len(msgs), ns.msgmni))
    cur = [int(v) for v in (_sysctl_read("kernel/sem") or "0 0 0 0").split()]
    need = [max([len(e.values) for e in sems] + [0]), sum(len(e.values) for e in sems), 0, len(sems)]
    if any(n > c for n, c in zip(need, cur, strict=True)):
        _sysctl_write("kernel/sem", " ".join(str(max(n, c)) for n, c in zip(need, cur, strict=True)))


def _write_sysctls(ns: ipc_pb2.IpcNsEntry) -> None:
    """The dumped sysctls, exactly (shm_rmid_forced waits for finish_restore)."""
    for field, name in _SYSCTLS + _NEXT_IDS:
        if ns.HasField(field) and _sysctl_read(name) is not None:
            value = getattr(ns, field)
            if field.endswith("_next_id") and value < 0:
                continue  # -1 = unset: what every *get left behind (the kernel refuses to be told)
            _sysctl_write(name, str(value))
    if len(ns.sem) == 4:
        _sysctl_write("kernel/sem", " ".join(str(v) for v in ns.sem))
    elif ns.sem:
        raise RestoreError(f"ipc-ns.img: kernel.sem has {len(ns.sem)} values, not 4")


def _read_all(images: ImageDir) -> tuple[ipc_pb2.IpcNsEntry, list, list, list]:
    ns = images.read_single("ipc-ns")
    return ns, images.read("ipc-shm"), images.read("ipc-sem"), images.read("ipc-msg")


def _restore_in_ns(images: ImageDir, ns_pid: int) -> dict[str, int]:
    busy = [k for k in ("shm", "sem", "msg") if _ids(k)]
    if busy:
        raise RestoreError(f"the IPC namespace of process {ns_pid} is not empty ({', '.join(busy)} objects exist)")
    ns, shms, sems, msgs = _read_all(images)
    _raise_limits(ns, shms, sems, msgs)
    if shms:
        with images.open_raw("ipc-shm-pages", id=None) as raw:
            for e in shms:
                _restore_shm(e, raw)
    for e in sems:
        _restore_sem(e)
    for e in msgs:
        _restore_msg(e)
    _write_sysctls(ns)
    return {"shm": len(shms), "sem": len(sems), "msg": len(msgs)}


def _finish_in_ns(images: ImageDir) -> dict[str, int]:
    ns = images.read_single("ipc-ns")
    removed = 0
    for e in images.read("ipc-shm"):
        if e.perm.mode & SHM_DEST:
            _ok(_libc.shmctl(e.id, IPC_RMID, None), f"shmctl({e.id}, IPC_RMID)")
            removed += 1
    if ns.shm_rmid_forced:
        _sysctl_write("kernel/shm_rmid_forced", str(ns.shm_rmid_forced))
    return {"removed": removed}


# ------------------------------------------------- the namespace helper ---

def _in_ipc_ns(pid: int, fn: Callable[[], dict[str, int]], error: type[RefcrError], what: str) -> dict[str, int]:
    """Run fn in a forked child that joined pid's IPC namespace; its JSON-able
    result (or its error, raised here as ``error``) comes back through a pipe."""
    try:
        ns_fd = os.open(proc.path(pid, "ns", "ipc"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise error(f"{what}: cannot open the IPC namespace of process {pid}: {e.strerror}") from None
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        child = os.fork()
    except BaseException:
        for fd in (ns_fd, r, w):
            os.close(fd)
        raise
    if child == 0:  # pragma: no cover (runs in the child)
        code = 1
        try:
            os.close(r)
            native.setns(ns_fd, native.CLONE_NEWIPC)
            msg = {"ok": fn()}
            code = 0
        except BaseException as e:  # noqa: B036 - everything must be reported, then _exit
            kind = "unsupported" if isinstance(e, UnsupportedObject) else "error"
            msg = {kind: str(e) if isinstance(e, RefcrError) else f"{type(e).__name__}: {e}"}
        try:
            data = json.dumps(msg).encode()
            while data:
                data = data[os.write(w, data):]
        finally:
            os._exit(code)
    os.close(ns_fd)
    os.close(w)
    chunks = []
    try:
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(child, 0)
    try:
        msg = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        msg = {}
    if "ok" in msg and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return msg["ok"]
    if "unsupported" in msg:
        raise UnsupportedObject(f"{what}: {msg['unsupported']}")
    reason = msg.get("error") or f"helper process ended with status {status:#x}"
    raise error(f"{what}: {reason}")


# ------------------------------------------------------------------ API ---

def dump(pid: int, images: ImageDir) -> None:
    """Dump every SysV object (and the sysctls) of pid's IPC namespace into
    ipc-ns, ipc-shm, ipc-shm-pages, ipc-sem and ipc-msg."""
    res = _in_ipc_ns(pid, lambda: _dump_in_ns(images), DumpError, f"IPC namespace of process {pid}")
    log.info("IPC namespace of %d: %d shm segments (%d bytes), %d semaphore sets, %d message queues "
             "(%d messages)", pid, res["shm"], res["shm_bytes"], res["sem"], res["msg"], res["messages"])


def _check_fresh_ns(ns_pid: int) -> None:
    try:
        theirs = os.stat(proc.path(ns_pid, "ns", "ipc")).st_ino
    except OSError as e:
        raise RestoreError(f"cannot see the IPC namespace of process {ns_pid}: {e.strerror}") from None
    if theirs == os.stat("/proc/self/ns/ipc").st_ino:
        raise RestoreError(f"process {ns_pid} shares refcr's IPC namespace; IPC objects are only "
                           "restored into a new one")


def restore(ns_pid: int, images: ImageDir) -> None:
    """Recreate every dumped SysV object, with its id, in the (fresh, empty)
    IPC namespace of process ns_pid."""
    _check_fresh_ns(ns_pid)
    res = _in_ipc_ns(ns_pid, lambda: _restore_in_ns(images, ns_pid), RestoreError,
                     f"restore of the IPC namespace of process {ns_pid}")
    log.info("IPC namespace of %d: restored %d shm segments, %d semaphore sets, %d message queues",
             ns_pid, res["shm"], res["sem"], res["msg"])


def finish_restore(ns_pid: int, images: ImageDir) -> None:
    """After every attachment is back (sysvshm_attach): remove the segments
    that were already removed (IPC_RMID, still attached) at dump time, and
    set kernel.shm_rmid_forced if it was set (earlier, it would destroy
    segments that are not attached yet)."""
    _check_fresh_ns(ns_pid)
    ns = images.read_single("ipc-ns")
    if not ns.shm_rmid_forced and not any(e.perm.mode & SHM_DEST for e in images.read("ipc-shm")):
        return
    res = _in_ipc_ns(ns_pid, lambda: _finish_in_ns(images), RestoreError,
                     f"restore of the IPC namespace of process {ns_pid}")
    log.debug("IPC namespace of %d: %d removed segments marked for destruction", ns_pid, res["removed"])


# --------------------------------------------------------- attachments ---

def sysvshm_id(m: proc.Mapping) -> int | None:
    """The shmid of a mapping that is a SysV shm attachment, else None
    (for memory dump: kind VMA_SYSVSHM, shmid = this; no pages to dump)."""
    if m.shared and SYSV_NAME_RE.fullmatch(m.name):
        return m.inode
    return None


def sysvshm_attach(remote: Remote, vma: mm_pb2.VmaEntry) -> None:
    """Attach SysV segment vma.shmid in the puppet at vma.start (shmat with
    SHM_REMAP, read-only unless the area was writable, SHM_EXEC if it was
    executable), then give the area its exact protection.

    Only whole-segment attachments are supported: a VMA that starts inside
    the segment or is shorter than it (a partial munmap or an mprotect split)
    is refused.  Needs remote.scratch (for IPC_STAT).
    """
    what = f"SysV shm {vma.shmid} at {vma.start:x}-{vma.end:x}"
    if not remote.scratch:
        raise ValueError("sysvshm_attach needs a Remote with a scratch buffer")
    ret = remote.call("shmctl", vma.shmid, IPC_STAT, remote.scratch)
    if ret < 0:
        raise RestoreError(f"{what}: the segment does not exist in the puppet's IPC namespace: {os.strerror(-ret)}")
    size = struct.unpack_from("<Q", remote.get(remote.scratch, _DS_SIZE), _SHM_SEGSZ)[0]
    if vma.pgoff or vma.end - vma.start != page_align_up(size):
        raise UnsupportedObject(f"{what}: only whole attachments are supported (the area covers "
                                f"{vma.pgoff:#x}+{vma.end - vma.start:#x} of a {size:#x}-byte segment)")
    if vma.start % PAGE_SIZE:
        raise RestoreError(f"{what}: unaligned address")
    flags = SHM_REMAP | (0 if vma.prot & PROT_WRITE else SHM_RDONLY) | (SHM_EXEC if vma.prot & PROT_EXEC else 0)
    addr = remote.call("shmat", vma.shmid, vma.start, flags)
    if addr < 0:
        raise RestoreError(f"{what}: shmat failed in process {remote.tid}: {os.strerror(-addr)}")
    if addr != vma.start:
        remote.call("shmdt", addr)
        raise RestoreError(f"{what}: shmat attached at {addr:x} instead")
    got = PROT_READ | (vma.prot & (PROT_WRITE | PROT_EXEC))
    if vma.prot != got:  # e.g. PROT_NONE, or write-only
        remote.check("mprotect", vma.start, vma.end - vma.start, vma.prot)
