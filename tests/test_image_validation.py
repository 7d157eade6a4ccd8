"""The validation layer (refcr/images/validate.py) on the cases issue 12 found
ending in a traceback, exit 2 or a hang: each is a real image with one field
made bad, and must end in one line naming the file and the field, exit 1,
before any process is created."""
from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import Any, Callable

import pytest
from crafted import Dumped, copy_images, dump_program, edit, kill_restored, refcr

from refcr.images import devnodes
from refcr.pb import filekinds_pb2, files_pb2, mm_pb2


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dumped]:
    where = tmp_path_factory.mktemp("validation")
    return {name: dump_program(name, where) for name in ("files", "threads", "userns", "aio")}


def _siginfo(signo: int) -> bytes:
    return struct.pack("<iii", signo, 0, -1).ljust(128, b"\0")


def _overlap(es: list[Any]) -> None:
    es[0].vmas[1].start = es[0].vmas[0].start


def _pages_outside(es: list[Any]) -> None:
    es[0].vaddr = 0x1000          # the first run (entry 0 is the head) somewhere no area is


def _shared_pages(es: list[Any]) -> None:
    v = next(v for v in es[0].vmas if v.kind == mm_pb2.VMA_FILE_SHARED)
    v.kind = mm_pb2.VMA_FILE_PRIVATE


def _cow_outside(es: list[Any]) -> None:
    v = next(v for v in es[0].vmas if v.kind == mm_pb2.VMA_ANON)
    v.cow.extend((v.end, 1))          # a page "shared with the parent" past the area's end


def _cow_in_file_area(es: list[Any]) -> None:
    v = next(v for v in es[0].vmas if v.kind == mm_pb2.VMA_FILE_PRIVATE)
    v.cow.extend((v.start, 1))


def _mapped_no_ghost(es: list[Any]) -> None:
    v = next(v for v in es[0].vmas if v.file_id)       # the deleted file the program maps
    v.file_id += 1                # the next entry: another kind of file


def _ghost_node(mode: int, rdev: Callable[[], int]) -> Callable[[list[Any]], None]:
    """An extra removed device node of this type, numbered by rdev() (called
    when the case runs: the numbers depend on this host's /dev)."""
    def add(es: list[Any]) -> None:
        e = files_pb2.FileEntry(id=max(x.id for x in es) + 1)
        e.ghost.CopyFrom(next(x.ghost for x in es if x.WhichOneof("file") == "ghost"))
        e.ghost.mode, e.ghost.rdev, e.ghost.ghost_id = mode | 0o600, rdev(), 99
        del e.ghost.data[:]
        es.append(e)
    return add


def _absent(kind: int) -> int:
    """A number no node of this type has in /dev here (loop minors count from 0 up)."""
    return next(os.makedev(7, m) for m in range(255, 0, -1) if devnodes.host_node(kind, os.makedev(7, m)) is None)


def _char_only() -> int:
    """The number of a character node of /dev that no block node has (a block
    node with it would be another device, a disk's for all refcr knows)."""
    return next(rdev for (kind, rdev) in sorted(devnodes.nodes())
                if kind == stat.S_IFCHR and devnodes.host_node(stat.S_IFBLK, rdev) is None)


def _notify_on(which: str, ghost: bool, **mark: Any) -> Callable[[list[Any]], None]:
    """An inotify instance or fanotify group whose one watch or mark names as
    its file_id the program's deleted file (its ghost), or another entry."""
    def add(es: list[Any]) -> None:
        named = next(x for x in es if (x.WhichOneof("file") == "ghost") == ghost)
        e = files_pb2.FileEntry(id=max(x.id for x in es) + 1)
        path = named.ghost.path if ghost else "/tmp"
        (e.inotify.watches if which == "inotify" else e.fanotify.marks).add(path=path, file_id=named.id, **mark)
        es.append(e)
    return add


def _thread_stacks_read_only(es: list[Any]) -> None:
    """Every private anonymous area read-only: the threads' stacks, where
    glibc keeps their rseq areas (the fuzzer's vmas[7].prot = 1)."""
    for v in es[0].vmas:
        if v.kind == mm_pb2.VMA_ANON and v.prot == 3:
            v.prot = 1


def _empty_inet(es: list[Any]) -> None:
    e = files_pb2.FileEntry(id=max(x.id for x in es) + 1)
    e.inet.SetInParent()
    es.append(e)


def _raw_inet(**fields: Any) -> Callable[[list[Any]], None]:
    """A raw IPv4 socket entry with fields made bad."""
    def add(es: list[Any]) -> None:
        e = files_pb2.FileEntry(id=max(x.id for x in es) + 1)
        e.inet.family, e.inet.type, e.inet.protocol, e.inet.state = 2, 3, 1, 7
        for k, v in fields.items():
            setattr(e.inet, k, v)
        es.append(e)
    return add


def _memfd_object(missing: bool) -> Callable[[list[Any]], None]:
    """A private file area made to name a memfd object: one without an image,
    or (missing=False) one that also names a file entry."""
    def edit_(es: list[Any]) -> None:
        v = next(v for v in es[0].vmas if v.kind == mm_pb2.VMA_FILE_PRIVATE and (v.file_id or missing))
        v.shmid = 987654
        if missing:
            v.file_id = 0
    return edit_


def _lock(**fields: Any) -> Callable[[list[Any]], None]:
    def add(es: list[Any]) -> None:
        es[0].locks.append(filekinds_pb2.FileLockEntry(**fields))
    return add


def _aio(**fields: Any) -> Callable[[list[Any]], None]:
    """The aio context holding events (aios[1]: the rings are in address
    order, the later io_setup's below the first's) with fields made bad."""
    def edit_(es: list[Any]) -> None:
        ring = es[0].aios[1]
        assert ring.events, "the crafted aio program's first context holds two events"
        for k, v in fields.items():
            setattr(ring, k, v(ring) if callable(v) else v)
    return edit_


def _aio_area_beyond_user_space(es: list[Any]) -> None:
    v = next(v for v in es[0].vmas if v.kind == mm_pb2.VMA_AIO_RING)
    ring = next(r for r in es[0].aios if r.id == v.start)
    v.start, v.end, ring.id = 1 << 47, (1 << 47) + ring.ring_len, 1 << 47


# (program, image type, id is the pid, edit, words the error must contain)
CASES: dict[str, tuple[str, str, bool, Callable[[list[Any]], None], tuple[str, ...]]] = {
    "overlapping areas": ("files", "mm", True, _overlap, ("mm-", "vmas[1]")),
    "area mapped from no ghost": ("files", "mm", True, _mapped_no_ghost, ("mm-", "vmas[", "file_id")),
    "deleted device node of a disk": ("files", "files", False, _ghost_node(stat.S_IFCHR, lambda: os.makedev(8, 0)),
                                      ("files.img", "ghost.rdev", "character device 8:0")),
    "deleted character node not in /dev": ("files", "files", False,
                                           _ghost_node(stat.S_IFCHR, lambda: _absent(stat.S_IFCHR)),
                                           ("files.img", "ghost.rdev", "character device 7:", "no character node 7:")),
    "deleted block node not in /dev": ("files", "files", False,
                                       _ghost_node(stat.S_IFBLK, lambda: _absent(stat.S_IFBLK)),
                                       ("files.img", "ghost.rdev", "block device 7:", "no block node 7:")),
    "deleted block node of a character device": ("files", "files", False, _ghost_node(stat.S_IFBLK, _char_only),
                                                 ("files.img", "ghost.rdev", "no block node")),
    "pages outside the areas": ("files", "pagemap", True, _pages_outside, ("pagemap-", "vaddr")),
    "user namespace": ("files", "inventory", False, lambda es: es[0].root_namespaces.append("user"),
                       ("inventory.img", "root_namespaces")),
    "bad code segment": ("files", "core", True, lambda es: setattr(es[0].threads[0].regs, "cs", 0x10),
                         ("core-", "regs.cs")),
    "fs base outside user space": ("threads", "core", True,
                                   lambda es: setattr(es[0].threads[1].regs, "fs_base", 1 << 63),
                                   ("core-", "threads[1].regs.fs_base")),
    "empty pending signal": ("threads", "core", True, lambda es: es[0].threads[1].pending.append(b""),
                             ("core-", "threads[1].pending")),
    "queued SIGKILL, threads": ("threads", "core", True,
                                lambda es: es[0].threads[2].pending.append(_siginfo(9)),
                                ("core-", "threads[2].pending")),
    "fd over the limit": ("files", "fdinfo", True, lambda es: setattr(es[0], "fd", 1 << 31), ("fdinfo-", "fd")),
    "open flags with O_TRUNC": ("files", "files", False,
                                lambda es: setattr(next(e for e in es if e.WhichOneof("file") == "reg").reg,
                                                   "flags", 0o1002), ("files.img", "reg.flags")),
    "NUL in a path": ("files", "mm", True, lambda es: setattr(es[0], "exe_path", "/bin/\0sh"),
                      ("mm-", "exe_path")),
    "empty inet entry": ("files", "files", False, _empty_inet, ("files.img", "inet.family")),
    "address scope over a byte": ("userns", "netns", False, lambda es: setattr(es[0].addrs[0], "scope", 1 << 31),
                                  ("netns.img", "addrs[0].scope")),
    "nft ruleset with an include": ("userns", "netns", False,
                                    lambda es: setattr(es[0], "nft_ruleset", 'include "/etc/shadow"\n'),
                                    ("netns.img", "nft_ruleset", "includes a file")),
    "memfd area without its object": ("files", "mm", True, _memfd_object(True), ("mm-", ".shmid", "987654")),
    "memfd area naming a file too": ("files", "mm", True, _memfd_object(False), ("mm-", ".shmid", "no file entry")),
    "raw socket of protocol 0": ("files", "files", False, _raw_inet(protocol=0), ("files.img", "inet.protocol")),
    "raw socket with a port": ("files", "files", False, _raw_inet(src_port=80), ("files.img", "inet.src_port")),
    "raw socket listening": ("files", "files", False, _raw_inet(state=10), ("files.img", "inet.state")),
    "cow run outside its area": ("files", "mm", True, _cow_outside, ("mm-", ".cow")),
    "cow run in a file area": ("files", "mm", True, _cow_in_file_area, ("mm-", ".cow")),
    "pid over PID_MAX": ("files", "pstree", False, lambda es: setattr(es[0], "host_pid", 1 << 30),
                         ("pstree.img", "host_pid")),
    "root sharing fs with a parent": ("files", "pstree", False, lambda es: setattr(es[0], "clone_flags", 0x200),
                                      ("pstree.img", "clone_flags", "no live parent")),
    "CLONE_SIGHAND sharing": ("files", "pstree", False, lambda es: setattr(es[0], "clone_flags", 0x800),
                            ("pstree.img", "clone_flags", "CLONE_SIGHAND (with CLONE_VM)")),
    "rseq area unmapped": ("threads", "core", True, lambda es: setattr(es[0].threads[1].rseq, "ptr", 0x1000),
                           ("core-", "threads[1].rseq")),
    "rseq area read-only": ("threads", "mm", True, _thread_stacks_read_only, ("core-", ".rseq", "writable")),
    "flock being broken": ("files", "files", False, _lock(kind=1, lease_break=1),
                           ("files.img", "locks[0].lease_break", "no lease")),
    "lease broken to nothing known": ("files", "files", False, _lock(kind=4, lease_break=3),
                                      ("files.img", "lease_break")),
    "root naming no removed directory": ("files", "core", True, lambda es: setattr(es[0], "root_file", 1),
                                         ("core-", "root_file", "no removed directory")),
    "inotify watch naming no ghost": ("files", "files", False, _notify_on("inotify", False, wd=1),
                                      ("files.img", "inotify.watches[0].file_id")),
    "fanotify mount mark naming a ghost": ("files", "files", False, _notify_on("fanotify", True, type=1),
                                           ("files.img", "fanotify.marks[0].file_id", "mount")),
    "sigaction for SIGKILL": ("files", "core", True, lambda es: setattr(es[0].sigactions[0], "sig", 9),
                              ("core-", "sigactions[0].sig")),
    "aio ring of another size than its nr_req's": ("aio", "mm", True, _aio(nr_req=200),
                                                   ("mm-", "aios[1].nr_req", "4 pages")),
    "aio ring not at its area": ("aio", "mm", True, _aio(id=lambda r: r.id + 4096), ("mm-", "aios[1].id")),
    "aio nr not the ring's": ("aio", "mm", True, _aio(nr=1000), ("mm-", "aios[1].nr")),
    "aio head past the ring": ("aio", "mm", True, _aio(head=lambda r: r.nr), ("mm-", "aios[1].head")),
    "aio tail past the ring": ("aio", "mm", True, _aio(tail=1 << 31), ("mm-", "aios[1].head", "tail")),
    "aio events not those of head..tail": ("aio", "mm", True, _aio(tail=5), ("mm-", "aios[1].events")),
    "aio contexts in one slot": ("aio", "mm", True, _aio(index=1), ("mm-", "aios[1].index")),
    "aio slot past the limit": ("aio", "mm", True, _aio(index=1 << 20), ("mm-", "aios[1].index")),
    "aio ring area without its context": ("aio", "mm", True, lambda es: es[0].aios.pop(),
                                          ("mm-", "vmas[", "no context")),
    "aio ring beyond user space": ("aio", "mm", True, _aio_area_beyond_user_space,
                                   ("mm-", "vmas[", "outside the user address space")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_in_one_line(name: str, dumps: dict[str, Dumped], tmp_path: Path) -> None:
    program, type_name, by_pid, change, words = CASES[name]
    d = dumps[program]
    images = copy_images(d, tmp_path / "img")
    edit(images, type_name, change, id=d.pid if by_pid else None)
    res = refcr("restore", "-D", str(images), "-d", cwd=tmp_path)
    kill_restored(d.pid)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for w in words:
        assert w in lines[0], lines[0]
