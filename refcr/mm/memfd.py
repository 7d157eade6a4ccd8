"""memfd: anonymous memory files (memfd_create), by fd and by mapping.

One memfd object may be open in several descriptions and mapped by several
areas and processes; it must come back as one object.  Its name, size,
mode and seals are its ``object`` (MemfdInodeEntry), keyed by the inode
number; its contents are dumped once, holes left out: into
pagemap-shmem-INODE.img when it is mapped (mm/memory.py treats a shared memfd
mapping like shared anonymous memory, plus memfd-inode-INODE.img), else
inside the first MemfdEntry.  Restore makes the object once per inode
(memfd_create, fill, F_ADD_SEALS last) in refcr, gives the first O_RDWR
description the one memfd_create made (a reopened writable description counts
as a writer of the file and makes execveat() of it fail with ETXTBSY; the
created one does not), reopens it through /proc/self/fd for each other
description, and mm/memory.py maps the same object.
"""
from __future__ import annotations

import fcntl
import os
import stat as stat_mod
import weakref

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs import fown, locks
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.fs.regfile import read_runs, reopen_kept, write_runs
from refcr.images.imagedir import ImageDir
from refcr.mm import pages
from refcr.pb import filekinds_pb2

PREFIX, DELETED = "/memfd:", " (deleted)"
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SEAL = 1
MFD_ALLOW_SEALING = 2
MAX_INLINE = 32 << 20      # contents kept inside files.img up to this size

# image directory -> {inode: local fd of the recreated object}
_objects: "weakref.WeakKeyDictionary[ImageDir, dict[int, int]]" = weakref.WeakKeyDictionary()


def is_memfd(name: str) -> bool:
    return name.startswith(PREFIX) and name.endswith(DELETED)


def object_entry(fd: int, inode: int, link: str) -> filekinds_pb2.MemfdInodeEntry:
    """What the memfd open at fd is (link: its /proc name)."""
    st = os.fstat(fd)
    return filekinds_pb2.MemfdInodeEntry(inode=inode, name=link[len(PREFIX):-len(DELETED)],
                                         size=st.st_size, seals=fcntl.fcntl(fd, F_GET_SEALS),
                                         mode=stat_mod.S_IMODE(st.st_mode), atime_ns=st.st_atime_ns,
                                         mtime_ns=st.st_mtime_ns)


def dump_mapped(images: ImageDir, map_file: str, inode: int, name: str) -> None:
    """mm/memory.py: a memfd is mapped; record the object (contents go to pagemap-shmem)."""
    fd = os.open(map_file, os.O_RDONLY | os.O_CLOEXEC)
    try:
        images.write("memfd-inode", [object_entry(fd, inode, name)], id=inode)
    finally:
        os.close(fd)


class MemfdKind:
    field = "memfd"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return stat_mod.S_ISREG(t.st.st_mode) and is_memfd(t.link)

    def dump(self, t: FdTarget, ctx: DumpFiles) -> filekinds_pb2.MemfdEntry:
        e = filekinds_pb2.MemfdEntry(inode=t.st.st_ino, flags=t.flags, pos=int(t.info.get("pos", "0")))
        done = ctx.extra.setdefault("memfd", set())
        if t.st.st_ino not in done:
            fd = os.open(t.proc_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                e.object.CopyFrom(object_entry(fd, t.st.st_ino, t.link))
                runs = read_runs(fd, e.object.size)
            finally:
                os.close(fd)
            if sum(len(r.data) for r in runs) > MAX_INLINE:
                raise UnsupportedObject(f"{describe(t)}: memfd with over {MAX_INLINE} bytes of data "
                                        "that is not mapped")
            e.data.extend(runs)
            done.add(t.st.st_ino)
        e.locks.extend(locks.dump(t, ctx))
        fown.record(t, e)
        return e

    def open(self, e: filekinds_pb2.MemfdEntry, ctx: RestoreFiles) -> int:
        objs = _objects.setdefault(ctx.images, {})
        if e.inode not in objs:
            first = next((x.memfd for x in ctx.entries.values()
                          if x.WhichOneof("file") == "memfd" and x.memfd.inode == e.inode
                          and x.memfd.HasField("object")), None)
            if first is None:
                raise RestoreError(f"files.img: memfd inode {e.inode} has no description of its object")
            objs[e.inode] = ctx.keep(create(ctx.images, first.object, first.data))
        handed = ctx.extra.setdefault("memfd-created-given", {})
        if e.HasField("object") and e.flags & os.O_ACCMODE == os.O_RDWR and e.inode not in handed:
            handed[e.inode] = True
            return _created_description(objs[e.inode], e)
        return reopen_kept(objs[e.inode], e.flags, e.pos, f"memfd {e.inode}")

    def after_install(self, e, fd: int, puppet, ctx: RestoreFiles) -> None:
        locks.restore(e.locks, fd, puppet, f"memfd {e.inode}", ctx)
        fown.restore(e, fd, puppet)       # after the locks: a lease makes its taker the owner


def _created_description(kept: int, e: filekinds_pb2.MemfdEntry) -> int:
    """The description memfd_create made, not a reopen: only that one does not
    count as a writer of the file, so that the task can still execveat() it
    (a reopened O_RDWR description makes exec fail with ETXTBSY)."""
    fd = os.dup(kept)
    os.lseek(fd, e.pos, os.SEEK_SET)
    fcntl.fcntl(fd, fcntl.F_SETFL, e.flags & (os.O_APPEND | os.O_NONBLOCK | os.O_NOATIME))
    return fd


def create(images: ImageDir, obj: filekinds_pb2.MemfdInodeEntry, runs=()) -> int:
    """A new memfd like obj, filled from runs or pagemap-shmem-INODE.img, sealed last."""
    flags = os.MFD_CLOEXEC | (0 if obj.seals == F_SEAL_SEAL else MFD_ALLOW_SEALING)
    try:
        fd = os.memfd_create(obj.name, flags)
    except OSError as exc:
        raise RestoreError(f"memfd {obj.name!r}: memfd_create failed: {exc.strerror}") from exc
    try:
        write_runs(fd, runs, obj.size)
        if not runs and images.exists("pagemap-shmem", id=obj.inode):
            for off, data in pages.read_pages(images, "pagemap-shmem", obj.inode):
                os.pwrite(fd, data[:max(0, obj.size - off)], off)
        os.fchmod(fd, obj.mode)
        if obj.mtime_ns:
            os.utime(fd, ns=(obj.atime_ns, obj.mtime_ns))
        if obj.seals and flags & MFD_ALLOW_SEALING:
            fcntl.fcntl(fd, F_ADD_SEALS, obj.seals)
    except OSError as exc:
        os.close(fd)
        raise RestoreError(f"memfd {obj.name!r}: cannot recreate it: {exc.strerror}") from exc
    return fd


def mapping_object(images: ImageDir, inode: int) -> int:
    """mm/memory.py: an fd of the memfd object a mapping needs (the caller closes it)."""
    objs = _objects.setdefault(images, {})
    if inode in objs:
        return os.dup(objs[inode])
    obj = images.read_single("memfd-inode", id=inode)
    objs[inode] = create(images, obj)
    return objs[inode]


KINDS = [MemfdKind()]
