"""Pipes: both ends, shared by id (the pipe inode), and the bytes queued in them.

The queued bytes are copied without consuming them: refcr opens the pipe
again through /proc/PID/fd/N for reading and tee(2)s it into a pipe of its
own.  Restore makes one new pipe per dumped pipe, gives it the old capacity,
writes the bytes back, and hands out its ends; the owner of O_ASYNC I/O and
O_ASYNC itself are set from inside the task once its fds are in (fs/fown.py).
"""
from __future__ import annotations

import fcntl
import os
import stat as stat_mod
from dataclasses import dataclass

from refcr.errors import RestoreError
from refcr.fs import fown
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles
from refcr.images.imagedir import ImageDir
from refcr.pb import files_pb2, pipes_data_pb2
from refcr.ptrace import native

F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
SPLICE_F_NONBLOCK = 2
STATUS_FLAGS = os.O_APPEND | os.O_NONBLOCK | os.O_DIRECT | os.O_ASYNC


def _pipe_id(link: str) -> int:
    return int(link[len("pipe:["):-1])


def read_queued(t: FdTarget, key: int | None = None) -> pipes_data_pb2.PipeDataEntry:
    """The bytes queued in t's pipe (or FIFO), without consuming them; the
    entry is keyed by `key`, by default the pipe's inode."""
    reader = os.open(t.proc_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        size = fcntl.fcntl(reader, F_GETPIPE_SZ)
        r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            fcntl.fcntl(w, F_SETPIPE_SZ, size)
            try:
                n = native.tee(reader, w, size, SPLICE_F_NONBLOCK)
            except BlockingIOError:
                n = 0
            data = os.read(r, n) if n else b""
        finally:
            os.close(r)
            os.close(w)
    finally:
        os.close(reader)
    return pipes_data_pb2.PipeDataEntry(pipe_id=_pipe_id(t.link) if key is None else key,
                                        pipe_size=size, data=data)


class PipeKind:
    field = "pipe"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return stat_mod.S_ISFIFO(t.st.st_mode) and t.link.startswith("pipe:[")

    def dump(self, t: FdTarget, ctx: DumpFiles) -> files_pb2.PipeEntry:
        queued = ctx.extra.setdefault("pipes", {})
        pipe_id = _pipe_id(t.link)
        if pipe_id not in queued:
            queued[pipe_id] = read_queued(t)
        e = files_pb2.PipeEntry(pipe_id=pipe_id, flags=t.flags)
        fown.record(t, e)
        return e

    def open(self, e: files_pb2.PipeEntry, ctx: RestoreFiles) -> int:
        pipes = ctx.extra.setdefault("pipes", {})
        if e.pipe_id not in pipes:
            pipes[e.pipe_id] = NewPipe.make(ctx, e.pipe_id)
        fd = pipes[e.pipe_id].end(e.flags & os.O_ACCMODE)
        fcntl.fcntl(fd, fcntl.F_SETFL, e.flags & STATUS_FLAGS & ~os.O_ASYNC)   # O_ASYNC: in the task
        return fd

    def after_install(self, e: files_pb2.PipeEntry, fd: int, puppet, ctx: RestoreFiles) -> None:
        """Owner, signal and O_ASYNC are set by the task itself (fs/fown.py): the
        owner's pid is the tree's, and SIGIO names the task's fd."""
        fown.restore(e, fd, puppet)


@dataclass
class NewPipe:
    """A pipe recreated in refcr, whose ends are handed out once each."""

    read_end: int
    write_end: int
    used: set[int]

    @classmethod
    def make(cls, ctx: RestoreFiles, pipe_id: int) -> "NewPipe":
        if "pipes-data" not in ctx.extra:
            ctx.extra["pipes-data"] = _queued(ctx.images)
        data = ctx.extra["pipes-data"].get(pipe_id)
        r, w = os.pipe2(os.O_CLOEXEC)
        ctx.keep(r)
        ctx.keep(w)
        if data is not None:
            try:
                fcntl.fcntl(w, F_SETPIPE_SZ, max(data.pipe_size, len(data.data)))
            except OSError as exc:
                raise RestoreError(f"pipe {pipe_id}: cannot set its size to {data.pipe_size}: "
                                   f"{exc.strerror}") from exc
            view = memoryview(data.data)
            while view:
                view = view[os.write(w, view):]
        return cls(r, w, set())

    def end(self, accmode: int) -> int:
        """The original end for the first user; a fresh open of the pipe after."""
        fd = self.read_end if accmode == os.O_RDONLY else self.write_end
        if accmode == os.O_RDWR or fd in self.used:
            return os.open(f"/proc/self/fd/{self.read_end}", accmode | os.O_CLOEXEC)
        self.used.add(fd)
        return os.dup(fd)


def _queued(images: ImageDir) -> dict[int, pipes_data_pb2.PipeDataEntry]:
    if not images.exists("pipes-data"):
        return {}
    return {e.pipe_id: e for e in images.read("pipes-data")}


def write_queued(images: ImageDir, ctx: DumpFiles) -> None:
    queued = ctx.extra.get("pipes", {})
    if queued:
        images.write("pipes-data", list(queued.values()))


KINDS = [PipeKind()]
