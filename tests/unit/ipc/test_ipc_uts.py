"""IPC (SysV shm/sem/msg) and UTS namespace dump and restore, on real namespaces.

A child unshares a fresh IPC and UTS namespace, creates objects with known
contents and stops; refcr dumps its namespace; a second child in another
fresh namespace gets the objects restored; both namespaces are then inspected
from inside by forked helpers that use plain libc calls (independent of
refcr.ipc.sysv).  Needs root (setns, ptrace, next_id sysctls).
"""
from __future__ import annotations

import ctypes
import mmap
import os
import pickle
import signal
import struct
import time

import pytest

from refcr.errors import RestoreError, UnsupportedObject
from refcr.images.imagedir import ImageDir, decode_file
from refcr.ipc import sysv
from refcr.ns import uts
from refcr.pb import mm_pb2, uts_pb2
from refcr.ptrace import native, proc
from refcr.ptrace.tracee import Remote

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setns, ptrace)")

PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
libc.semctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
libc.msgctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
libc.msgsnd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.msgrcv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long, ctypes.c_int]
libc.msgrcv.restype = ctypes.c_ssize_t

IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_SET, IPC_STAT, IPC_RMID = 0o1000, 0o2000, 0o4000, 1, 2, 0
GETALL, SETALL, MSG_COPY = 13, 17, 0o40000

SHM_KEY, SEM_KEY, MSG_KEY = 0x9234ABCD, 0x5678, 0x7ABC
SHM_ID, PRIV_ID, SEM_ID, MSG_ID = 4242, 65537 * 3, 77, 1 << 16 | 5
SHM_SIZE = 5 * PAGE + 100
SHM_DATA = {0: b"hello", 3 * PAGE + 7: b"world", SHM_SIZE - 3: b"end"}
SEM_VALUES = [0, 1, 7, 32767]
MESSAGES = [(1, b"first"), (5, b""), (2, b"x" * 1000), (1, b"last")]


def ok(ret: int, what: str) -> int:
    if ret == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), what)
    return ret


def sysctl(name: str, value: str | None = None) -> str:
    with open(f"/proc/sys/kernel/{name}", "r" if value is None else "w") as f:
        if value is None:
            return f.read().strip()
        f.write(value)
        return value


def sysvipc(kind: str) -> list[dict[str, str]]:
    with open(f"/proc/sysvipc/{kind}") as f:
        lines = f.read().splitlines()
    head = lines[0].split()
    return [dict(zip(head, line.split(), strict=True)) for line in lines[1:] if line.strip()]


def set_owner(ctl, id: int, uid: int, gid: int, mode: int, qbytes: int | None = None, sem=False) -> None:
    buf = ctypes.create_string_buffer(128)
    ok(ctl(id, 0, IPC_STAT, buf) if sem else ctl(id, IPC_STAT, buf), "stat")
    struct.pack_into("<II", buf, 4, uid, gid)
    struct.pack_into("<I", buf, 20, mode)
    if qbytes is not None:
        struct.pack_into("<Q", buf, 88, qbytes)
    ok(ctl(id, 0, IPC_SET, buf) if sem else ctl(id, IPC_SET, buf), "set")


def make_objects() -> None:
    """Runs in a child, inside its fresh IPC namespace."""
    sysctl("msgmnb", "20000")
    sysctl("shm_next_id", str(SHM_ID))
    os.setresuid(-1, 1234, -1)                  # created by euid 1234: cuid 1234
    shm = ok(libc.shmget(SHM_KEY - (1 << 32), SHM_SIZE, IPC_CREAT | 0o640), "shmget")
    os.setresuid(-1, 0, -1)
    assert shm == SHM_ID
    addr = ok(libc.shmat(shm, None, 0) or 0, "shmat")
    for off, data in SHM_DATA.items():
        ctypes.memmove(addr + off, data, len(data))
    libc.shmdt(ctypes.c_void_p(addr))
    set_owner(libc.shmctl, shm, 1000, 100, 0o640)
    sysctl("shm_next_id", str(PRIV_ID))
    assert ok(libc.shmget(0, PAGE, IPC_CREAT | 0o600), "shmget private") == PRIV_ID
    sysctl("sem_next_id", str(SEM_ID))
    sem = ok(libc.semget(SEM_KEY, len(SEM_VALUES), IPC_CREAT | 0o660), "semget")
    ok(libc.semctl(sem, 0, SETALL, (ctypes.c_ushort * 4)(*SEM_VALUES)), "SETALL")
    sysctl("msg_next_id", str(MSG_ID))
    msg = ok(libc.msgget(MSG_KEY, IPC_CREAT | 0o620), "msgget")
    for mtype, text in MESSAGES:
        buf = ctypes.create_string_buffer(struct.pack("<q", mtype) + text)
        ok(libc.msgsnd(msg, buf, len(text), IPC_NOWAIT), "msgsnd")
    set_owner(libc.msgctl, msg, 0, 0, 0o620, qbytes=5000)
    sysctl("msg_next_id", "999")                # a pending next id survives too


def ns_child(flags: int, setup=None) -> int:
    """Fork a child into fresh namespaces (flags), run setup there, stop."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            native.unshare(flags)
            if setup:
                setup()
            os.write(w, b"ok")
            os.close(w)
            while True:
                time.sleep(1)
        except BaseException as e:
            os.write(w, repr(e).encode())
        finally:
            os._exit(1)
    os.close(w)
    msg = os.read(r, 4096)
    os.close(r)
    assert msg == b"ok", msg
    return pid


def reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def in_ns(pid: int, fn, nstype: int = native.CLONE_NEWIPC):
    """Run fn inside pid's namespace (a forked helper); returns its result."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            fd = os.open(f"/proc/{pid}/ns/{'ipc' if nstype == native.CLONE_NEWIPC else 'uts'}", os.O_RDONLY)
            native.setns(fd, nstype)
            data = pickle.dumps(("ok", fn()))
        except BaseException as e:
            data = pickle.dumps(("error", repr(e)))
        os.write(w, data)
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(child, 0)
    status, value = pickle.loads(b"".join(chunks))
    assert status == "ok", value
    return value


def copy_messages(id: int, n: int) -> list[tuple[int, bytes]]:
    buf = ctypes.create_string_buffer(8 + 8192)
    out = []
    for i in range(n):
        got = ok(libc.msgrcv(id, buf, 8192, i, IPC_NOWAIT | MSG_COPY), "msgrcv copy")
        out.append((struct.unpack_from("<q", buf.raw)[0], buf.raw[8:8 + got]))
    return out


def inspect() -> dict:
    """Everything the tests check, seen from inside a namespace."""
    shm = {int(e["shmid"]): e for e in sysvipc("shm")}
    sem = {int(e["semid"]): e for e in sysvipc("sem")}
    msg = {int(e["msqid"]): e for e in sysvipc("msg")}
    res = {"shm": shm, "sem": sem, "msg": msg,
           "sysctl": {n: sysctl(n) for n in ("msgmnb", "shm_next_id", "sem_next_id", "msg_next_id")}}
    if SHM_ID in shm:
        addr = libc.shmat(SHM_ID, None, 0o10000)
        res["shm_bytes"] = ctypes.string_at(addr, SHM_SIZE)
        libc.shmdt(ctypes.c_void_p(addr))
    if SEM_ID in sem:
        vals = (ctypes.c_ushort * 4)()
        ok(libc.semctl(SEM_ID, 0, GETALL, vals), "GETALL")
        res["sem_values"] = list(vals)
    if MSG_ID in msg:
        res["messages"] = copy_messages(MSG_ID, int(msg[MSG_ID]["qnum"]))
        ds = ctypes.create_string_buffer(128)
        ok(libc.msgctl(MSG_ID, IPC_STAT, ds), "msg stat")
        res["qbytes"] = struct.unpack_from("<Q", ds.raw, 88)[0]
    return res


def expected_shm_bytes() -> bytes:
    data = bytearray(SHM_SIZE)
    for off, d in SHM_DATA.items():
        data[off:off + len(d)] = d
    return bytes(data)


@pytest.fixture
def dumped(tmp_path):
    """A namespace with objects, dumped into tmp_path/img."""
    src = ns_child(native.CLONE_NEWIPC, make_objects)
    try:
        os.kill(src, signal.SIGSTOP)
        os.waitpid(src, os.WUNTRACED)
        before = in_ns(src, lambda: {e["shmid"]: e["rss"] for e in sysvipc("shm")})
        with ImageDir(str(tmp_path / "img"), "w") as images:
            sysv.dump(src, images)
        yield src, str(tmp_path / "img"), before
    finally:
        reap(src)


def test_dump_leaves_source_intact(dumped):
    src, _, before = dumped
    after = in_ns(src, inspect)
    assert after["shm"][SHM_ID]["rss"] == before[str(SHM_ID)] == str(3 * PAGE)  # nothing allocated by the dump
    assert after["shm"][SHM_ID]["nattch"] == "0"
    assert after["messages"] == MESSAGES                         # not consumed
    assert after["sysctl"]["msg_next_id"] == "999"


def test_images_decode(dumped):
    _, img, _ = dumped
    _, _, shms = decode_file(os.path.join(img, "ipc-shm.img"))
    assert [(e.id, e.perm.key, e.size) for e in shms] == [(SHM_ID, SHM_KEY, SHM_SIZE), (PRIV_ID, 0, PAGE)]
    seg = shms[0]
    assert [(r.offset, r.length) for r in seg.data] == [(0, PAGE), (3 * PAGE, PAGE), (5 * PAGE, 100)]
    assert os.path.getsize(os.path.join(img, "ipc-shm-pages.img")) == 2 * PAGE + 100
    assert (seg.perm.uid, seg.perm.gid, seg.perm.cuid, seg.perm.mode & 0o777) == (1000, 100, 1234, 0o640)
    assert not shms[1].data
    _, _, sems = decode_file(os.path.join(img, "ipc-sem.img"))
    assert [(e.id, e.perm.key, list(e.values)) for e in sems] == [(SEM_ID, SEM_KEY, SEM_VALUES)]
    _, _, msgs = decode_file(os.path.join(img, "ipc-msg.img"))
    assert [(m.mtype, m.text) for m in msgs[0].messages] == MESSAGES
    assert msgs[0].qbytes == 5000
    _, _, (ns,) = decode_file(os.path.join(img, "ipc-ns.img"))
    assert ns.msgmnb == 20000 and ns.msg_next_id == 999 and len(ns.sem) == 4


def test_restore_into_fresh_namespace(dumped):
    _, img, _ = dumped
    dst = ns_child(native.CLONE_NEWIPC)
    try:
        with ImageDir(img) as images:
            sysv.restore(dst, images)
        got = in_ns(dst, inspect)
    finally:
        reap(dst)
    assert sorted(got["shm"]) == [SHM_ID, PRIV_ID]
    seg = got["shm"][SHM_ID]
    assert int(seg["key"]) == SHM_KEY - (1 << 32)                  # key_t is printed signed
    assert (seg["perms"], seg["size"], seg["uid"], seg["gid"], seg["cuid"]) == ("640", str(SHM_SIZE), "1000",
                                                                                "100", "1234")
    assert seg["rss"] == str(3 * PAGE)                             # restored sparse
    assert seg["nattch"] == "0"
    assert got["shm_bytes"] == expected_shm_bytes()
    priv = got["shm"][PRIV_ID]
    assert (priv["key"], priv["perms"], priv["rss"]) == ("0", "600", "0")
    sem = got["sem"][SEM_ID]
    assert (int(sem["key"]), sem["perms"], sem["nsems"]) == (SEM_KEY, "660", "4")
    assert got["sem_values"] == SEM_VALUES
    msg = got["msg"][MSG_ID]
    assert (int(msg["key"]), msg["perms"], msg["qnum"]) == (MSG_KEY, "620", "4")
    assert got["messages"] == MESSAGES
    assert got["qbytes"] == 5000
    assert got["sysctl"]["msgmnb"] == "20000"
    assert got["sysctl"]["msg_next_id"] == "999"
    assert got["sysctl"]["shm_next_id"] == "-1"


def test_restore_refuses_non_empty_or_shared_namespace(dumped):
    _, img, _ = dumped
    with ImageDir(img) as images:
        with pytest.raises(RestoreError, match="shares refcr's IPC namespace"):
            sysv.restore(os.getpid(), images)
        dst = ns_child(native.CLONE_NEWIPC, lambda: libc.msgget(0, IPC_CREAT | 0o600))
        try:
            with pytest.raises(RestoreError, match="not empty"):
                sysv.restore(dst, images)
        finally:
            reap(dst)


def test_restore_reports_an_id_that_cannot_be_had(dumped, tmp_path):
    _, img, _ = dumped
    with ImageDir(img) as images:
        shms = images.read("ipc-shm")
    shms[0].id = 1 << 31
    bad = ImageDir(str(tmp_path / "bad"), "w")
    with ImageDir(img) as images:
        for t in ("ipc-ns", "ipc-sem", "ipc-msg"):
            bad.write(t, images.read(t))
        with images.open_raw("ipc-shm-pages", id=None) as src, bad.open_raw("ipc-shm-pages", id=None,
                                                                                mode="wb") as dst:
            dst.write(src.read())
    bad.write("ipc-shm", shms)
    dst_pid = ns_child(native.CLONE_NEWIPC)
    try:
        with pytest.raises(RestoreError, match="bad id"):
            sysv.restore(dst_pid, bad)
    finally:
        reap(dst_pid)
        bad.close()


# -- attachments -----------------------------------------------------------


def seize_remote(pid: int) -> Remote:
    native.seize(pid)
    native.interrupt(pid)
    while True:
        st = native.wait(pid)
        if os.WIFSTOPPED(st) and st >> 16 == native.PTRACE_EVENT_STOP:
            break
        native.cont(pid, 0)
    vdso = next(m for m in proc.maps(pid) if m.name == "[vdso]")
    remote = Remote(pid, code_addr=vdso.start, patch=True)
    remote.alloc_scratch()
    return remote


def test_sysvshm_attach(dumped):
    _, img, _ = dumped
    dst = ns_child(native.CLONE_NEWIPC)
    try:
        with ImageDir(img) as images:
            sysv.restore(dst, images)
        remote = seize_remote(dst)
        length = 6 * PAGE
        # a place in the puppet that is mapped already: SHM_REMAP replaces it
        start = remote.check("mmap", 0, 2 * length, 3, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        rw = mm_pb2.VmaEntry(start=start, end=start + length, prot=3, kind=mm_pb2.VMA_SYSVSHM, shmid=SHM_ID,
                             flags=mmap.MAP_SHARED)
        sysv.sysvshm_attach(remote, rw)
        ro = mm_pb2.VmaEntry(start=start + length, end=start + 2 * length, prot=1, kind=mm_pb2.VMA_SYSVSHM,
                             shmid=SHM_ID, flags=mmap.MAP_SHARED)
        sysv.sysvshm_attach(remote, ro)
        maps = {m.start: m for m in proc.maps(dst)}
        assert maps[start].perms == "rw-s" and maps[start + length].perms == "r--s"
        assert maps[start].name == f"/SYSV{SHM_KEY:08x} (deleted)"
        assert sysv.sysvshm_id(maps[start]) == SHM_ID == sysv.sysvshm_id(maps[start + length])
        assert sysv.sysvshm_id(next(m for m in maps.values() if m.name == "[vdso]")) is None
        assert os.stat(f"/proc/{dst}/map_files/{start:x}-{start + length:x}").st_ino == SHM_ID
        assert remote.read(start, SHM_SIZE) == expected_shm_bytes()
        remote.write(start + PAGE, b"via puppet")               # shared: visible through the other attach
        assert remote.read(start + length + PAGE, 10) == b"via puppet"
        assert in_ns(dst, lambda: {e["shmid"]: e["nattch"] for e in sysvipc("shm")})[str(SHM_ID)] == "2"
        # a protection narrower than what shmat gives comes back through mprotect
        none = mm_pb2.VmaEntry(start=start, end=start + PAGE, prot=0, kind=mm_pb2.VMA_SYSVSHM, shmid=PRIV_ID)
        sysv.sysvshm_attach(remote, none)
        assert {m.start: m for m in proc.maps(dst)}[start].perms == "---s"
        # partial attachments are refused clearly
        part = mm_pb2.VmaEntry(start=start, end=start + PAGE, prot=3, kind=mm_pb2.VMA_SYSVSHM, shmid=SHM_ID)
        with pytest.raises(UnsupportedObject, match="only whole attachments"):
            sysv.sysvshm_attach(remote, part)
        gone = mm_pb2.VmaEntry(start=start, end=start + PAGE, prot=3, kind=mm_pb2.VMA_SYSVSHM, shmid=12345)
        with pytest.raises(RestoreError, match="does not exist"):
            sysv.sysvshm_attach(remote, gone)
        remote.close()
    finally:
        reap(dst)


def test_finish_restore_removes_destroyed_segments(tmp_path):
    def setup():
        sysctl("shm_next_id", "9")
        sid = ok(libc.shmget(0x42, PAGE, IPC_CREAT | 0o600), "shmget")
        addr = libc.shmat(sid, None, 0)
        ctypes.memmove(addr, b"kept", 4)
        ok(libc.shmctl(sid, IPC_RMID, None), "rmid")            # attached, so it lives on as SHM_DEST

    src = ns_child(native.CLONE_NEWIPC, setup)
    dst = ns_child(native.CLONE_NEWIPC)
    try:
        with ImageDir(str(tmp_path / "img"), "w") as images:
            sysv.dump(src, images)
            (e,) = images.read("ipc-shm")
            assert e.id == 9 and e.perm.key == 0 and e.perm.mode & sysv.SHM_DEST and e.nattch == 1
            sysv.restore(dst, images)
            remote = seize_remote(dst)
            start = remote.check("mmap", 0, PAGE, 3, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
            sysv.sysvshm_attach(remote, mm_pb2.VmaEntry(start=start, end=start + PAGE, prot=3, shmid=9,
                                                       kind=mm_pb2.VMA_SYSVSHM))
            sysv.finish_restore(dst, images)
            (seg,) = in_ns(dst, lambda: sysvipc("shm"))
            assert seg["shmid"] == "9" and int(seg["perms"], 8) & 0o1000 and seg["nattch"] == "1"
            assert remote.read(start, 4) == b"kept"
            remote.close()
    finally:
        reap(src)
        reap(dst)


# -- UTS -------------------------------------------------------------------


def test_uts_dump_and_restore(tmp_path):
    def setup():
        libc.sethostname(b"refcr-test-host", 15)
        libc.setdomainname(b"example.org", 11)

    src = ns_child(native.CLONE_NEWUTS, setup)
    dst = ns_child(native.CLONE_NEWUTS)
    try:
        remote = seize_remote(src)
        e = uts.dump(remote)
        remote.free_scratch()
        remote.close()
        assert (e.nodename, e.domainname) == ("refcr-test-host", "example.org")
        with ImageDir(str(tmp_path / "img"), "w") as images:
            images.write("uts", [e])
            e2 = images.read_single("uts")
        host = os.uname()
        puppet = seize_remote(dst)
        uts.restore(puppet, e2)
        with pytest.raises(RestoreError, match="longer than 64"):
            uts.restore(puppet, uts_pb2.UtsEntry(nodename="x" * 65))
        puppet.close()
        got = in_ns(dst, lambda: (os.uname().nodename, open("/proc/sys/kernel/domainname").read().strip()),
                    native.CLONE_NEWUTS)
        assert got == ("refcr-test-host", "example.org")
        assert os.uname() == host                                # our own namespace is untouched
    finally:
        reap(src)
        reap(dst)
