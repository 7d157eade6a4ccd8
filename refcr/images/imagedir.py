"""The image directory and the format of its files.

Every image file except the raw page files is::

    magic   u32 little-endian, one value per image type
    entry*  u32 little-endian length N, then N bytes of one serialized
            protobuf message

A type with a head message (pagemap) stores the head as the first entry.
Raw page files (``pages-N.img``) hold page data only, no magic.

Images are untrusted input.  Reading is strict: a wrong magic, a short
read, an absurd length or a message that does not decode is an
:class:`~refcr.errors.ImageError` naming the file and the byte offset of the
bad entry.  File names come only from the registry below (plus a checked id),
and files are opened relative to the directory's fd with ``O_NOFOLLOW``, so an
image directory cannot redirect refcr to another file through a symlink.

Adding an image type is one :func:`_register` line.
"""

from __future__ import annotations

import errno
import importlib
import io
import os
import re
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from refcr.errors import ImageError, OptionError

_U32 = struct.Struct("<I")
MAX_ENTRY_SIZE = 64 << 20  # no single message is anywhere near this
INCOMPLETE_MARKER = "INCOMPLETE"
IN_PROGRESS = "dump in progress (refcr did not finish it)"   # written first, removed last
_ID_RE = re.compile(r"\w+", re.ASCII)


@dataclass(frozen=True)
class ImageType:
    name: str
    magic: int  # 0 for raw files (no magic on disk)
    filename: str  # "core-{id}.img" or "inventory.img"
    entry: str | None  # "core_pb2.CoreEntry" inside refcr.pb; None = raw data
    head: str | None = None

    @property
    def raw(self) -> bool:
        return self.entry is None

    @property
    def has_id(self) -> bool:
        return "{id}" in self.filename

    def entry_class(self) -> type:
        assert self.entry is not None, f"{self.name} is a raw image"
        return _message_class(self.entry)

    def head_class(self) -> type | None:
        return _message_class(self.head) if self.head else None

    def name_pattern(self) -> re.Pattern[str]:
        pre, _, post = self.filename.partition("{id}")
        if not self.has_id:
            return re.compile(re.escape(self.filename))
        return re.compile(re.escape(pre) + r"(\w+)" + re.escape(post), re.ASCII)


IMAGE_TYPES: dict[str, ImageType] = {}
_BY_MAGIC: dict[int, ImageType] = {}


def _tag(four: bytes) -> int:
    """The magic whose on-disk bytes read as ``four`` in a hex dump."""
    assert len(four) == 4
    return _U32.unpack(four)[0]


def _register(name: str, tag: bytes | None, filename: str, entry: str | None, head: str | None = None) -> None:
    magic = 0 if tag is None else _tag(tag)
    t = ImageType(name, magic, filename, entry, head)
    assert name not in IMAGE_TYPES, name
    assert (magic == 0) == (entry is None), name
    assert magic == 0 or magic not in _BY_MAGIC, f"magic of {name} already used by {_BY_MAGIC[magic].name}"
    assert all(o.filename != filename for o in IMAGE_TYPES.values()), filename
    IMAGE_TYPES[name] = t
    if magic:
        _BY_MAGIC[magic] = t


# name             on-disk magic  file name               message (module.Class in refcr.pb)   head
_register("inventory", b"RCiv", "inventory.img", "inventory_pb2.InventoryEntry")
_register("pstree", b"RCpt", "pstree.img", "pstree_pb2.PstreeEntry")
_register("core", b"RCco", "core-{id}.img", "core_pb2.CoreEntry")
_register("mm", b"RCmm", "mm-{id}.img", "mm_pb2.MmEntry")
_register("pagemap", b"RCpm", "pagemap-{id}.img", "pagemap_pb2.PagemapEntry", "pagemap_pb2.PagemapHead")
_register("pagemap-shmem", b"RCps", "pagemap-shmem-{id}.img", "pagemap_pb2.PagemapEntry", "pagemap_pb2.PagemapHead")
_register("pages", None, "pages-{id}.img", None)
_register("fdinfo", b"RCfd", "fdinfo-{id}.img", "fdinfo_pb2.FdinfoEntry")
_register("files", b"RCfl", "files.img", "files_pb2.FileEntry")
_register("pipes-data", b"RCpd", "pipes-data.img", "pipes_data_pb2.PipeDataEntry")
_register("uts", b"RCut", "uts.img", "uts_pb2.UtsEntry")
_register("userns", b"RCus", "userns.img", "userns_pb2.UsernsEntry")
_register("cgroup", b"RCcg", "cgroup.img", "cgroup_pb2.CgroupEntry")
_register("mntns", b"RCmn", "mntns.img", "mntns_pb2.MntNsEntry")
_register("tmpfs", None, "tmpfs-{id}.tar", None)    # a tar archive of one tmpfs mount (refcr/ns/mntns.py)
_register("ipc-ns", b"RCin", "ipc-ns.img", "ipc_pb2.IpcNsEntry")
_register("ipc-shm", b"RCsh", "ipc-shm.img", "ipc_pb2.ShmEntry")
_register("ipc-shm-pages", None, "ipc-shm-pages.img", None)
_register("ipc-sem", b"RCsm", "ipc-sem.img", "ipc_pb2.SemEntry")
_register("ipc-msg", b"RCmg", "ipc-msg.img", "ipc_pb2.MsgEntry")
_register("memfd-inode", b"RCmf", "memfd-inode-{id}.img", "filekinds_pb2.MemfdInodeEntry")
_register("fifo-data", b"RCff", "fifo-data.img", "pipes_data_pb2.PipeDataEntry")
_register("netns", b"RCnn", "netns.img", "netns_pb2.NetNsEntry")
_register("pagehash", None, "pagehash-{id}.img", None)   # refcr/mm/track.py: (vaddr u64, blake2b-128) per page


def _message_class(ref: str) -> type:
    """``"mod_pb2.Class"`` → the class in ``refcr.pb.mod_pb2``, imported lazily.

    A reference with more dots is taken as an absolute module path (used by
    tests and out-of-tree types).
    """
    mod, _, cls = ref.rpartition(".")
    module = importlib.import_module(mod if "." in mod else f"refcr.pb.{mod}")
    return getattr(module, cls)


def image_type(name: str) -> ImageType:
    try:
        return IMAGE_TYPES[name]
    except KeyError:
        raise ValueError(f"unknown image type {name!r}") from None


def type_by_magic(magic: int) -> ImageType | None:
    return _BY_MAGIC.get(magic)


def type_by_filename(filename: str) -> tuple[ImageType, str | None] | None:
    """The registered type whose name pattern ``filename`` matches, and its id."""
    for t in IMAGE_TYPES.values():
        m = t.name_pattern().fullmatch(filename)
        if m:
            return t, (m.group(1) if t.has_id else None)
    return None


def _filename(t: ImageType, id: Any) -> str:
    if t.has_id:
        if id is None:
            raise ValueError(f"image type {t.name} needs an id")
        sid = str(id)
        if not _ID_RE.fullmatch(sid):
            raise ValueError(f"bad image id {sid!r}")
        return t.filename.replace("{id}", sid)
    if id is not None:
        raise ValueError(f"image type {t.name} takes no id")
    return t.filename


# -- encoding / decoding ---------------------------------------------------


def encode(t: ImageType, entries: Iterable[Any], head: Any = None) -> bytes:
    if t.raw:
        raise ValueError(f"{t.name} is a raw image; use open_raw()")
    if (head is None) != (t.head is None):
        raise ValueError(f"image type {t.name} {'needs' if t.head else 'has no'} head")
    out = io.BytesIO()
    out.write(_U32.pack(t.magic))
    msgs = ([head] if head is not None else []) + list(entries)
    for i, msg in enumerate(msgs):
        want = t.head_class() if (i == 0 and head is not None) else t.entry_class()
        if not isinstance(msg, want):
            raise TypeError(f"{t.name}: expected {want.__name__}, got {type(msg).__name__}")
        data = msg.SerializeToString()
        if len(data) > MAX_ENTRY_SIZE:
            raise ValueError(f"{t.name}: entry of {len(data)} bytes is over the limit")
        out.write(_U32.pack(len(data)))
        out.write(data)
    return out.getvalue()


def _decode_msg(cls: type, data: bytes, path: str, offset: int) -> Any:
    from google.protobuf.message import DecodeError

    msg = cls()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ImageError(path, offset, f"undecodable {cls.__name__}: {e or 'bad wire data'}") from None
    if not msg.IsInitialized():
        missing = ", ".join(msg.FindInitializationErrors())
        raise ImageError(path, offset, f"{cls.__name__} lacks required fields: {missing}")
    return msg


def decode(t: ImageType, f: io.BufferedIOBase, path: str, size: int) -> tuple[Any, list]:
    """Read one non-raw image from ``f`` (positioned at 0, ``size`` bytes)."""
    magic_b = f.read(4)
    if len(magic_b) < 4:
        raise ImageError(path, 0, "empty file" if not magic_b else "truncated magic")
    magic = _U32.unpack(magic_b)[0]
    if magic != t.magic:
        other = _BY_MAGIC.get(magic)
        what = f"{other.name} image" if other else "unknown magic"
        raise ImageError(path, 0, f"wrong magic {magic:#010x} ({what}), expected {t.magic:#010x} ({t.name})")
    entry_cls = t.entry_class()
    head_cls = t.head_class()
    head = None
    entries: list = []
    offset = 4
    while True:
        lb = f.read(4)
        if not lb:
            break
        if len(lb) < 4:
            raise ImageError(path, offset, f"truncated entry length ({len(lb)} of 4 bytes)")
        n = _U32.unpack(lb)[0]
        if n > MAX_ENTRY_SIZE:
            raise ImageError(path, offset, f"entry length {n} is over the {MAX_ENTRY_SIZE} byte limit")
        if offset + 4 + n > size:
            raise ImageError(path, offset, f"entry of {n} bytes runs past the end of the file ({size} bytes)")
        data = f.read(n)
        if len(data) != n:
            raise ImageError(path, offset, f"truncated entry ({len(data)} of {n} bytes)")
        if head_cls is not None and head is None:
            head = _decode_msg(head_cls, data, path, offset)
        else:
            entries.append(_decode_msg(entry_cls, data, path, offset))
        offset += 4 + n
    if head_cls is not None and head is None:
        raise ImageError(path, 4, f"missing {head_cls.__name__}")
    return head, entries


def _open_nofollow(name: str, dir_fd: int | None = None, shown: str | None = None) -> tuple[io.BufferedReader, int]:
    """Open a regular file for reading without following a symlink at ``name``.

    Errors name the file as ``shown`` (the path a person recognises).
    """
    shown = shown or name
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        raise ImageError(shown, None, "missing image") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ImageError(shown, None, "image is a symlink (not followed)") from None
        raise ImageError(shown, None, f"cannot open: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ImageError(shown, None, "not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb"), st.st_size


def decode_file(path: str) -> tuple[ImageType, Any, list]:
    """Decode one image file; its type comes from its name, else its magic.

    Raw page files (known by name only) come back with no head and no entries.
    """
    byname = type_by_filename(os.path.basename(path))
    f, size = _open_nofollow(path)
    with f:
        if byname and byname[0].raw:
            return byname[0], None, []
        if byname:
            t = byname[0]
        else:
            magic_b = f.read(4)
            if len(magic_b) < 4:
                raise ImageError(path, 0, "empty file" if not magic_b else "truncated magic")
            magic = _U32.unpack(magic_b)[0]
            t = _BY_MAGIC.get(magic)
            if t is None:
                raise ImageError(path, 0, f"unknown magic {magic:#010x}")
            f.seek(0)
        head, entries = decode(t, f, path, size)
    return t, head, entries


# -- the directory -----------------------------------------------------------


class ImageDir:
    """An image directory, opened once; every file is reached through its fd.

    ``mode="r"``: the directory must exist.  ``mode="w"``: created if
    missing, and must be empty if it exists; with ``others_ok`` it may hold
    files that are not images (what a container runtime keeps beside them,
    runc's descriptors.json, a log), but no image file and no marker.  Both
    modes may read and write.
    """

    def __init__(self, path: str, mode: str = "r", others_ok: bool = False) -> None:
        if mode not in ("r", "w"):
            raise ValueError(f"bad mode {mode!r}")
        self.path = path
        self.mode = mode
        self._fd = -1
        # images decoded by validation, each handed out once to its first reader
        # (the restore then works on what was checked, and decodes nothing twice)
        self._checked: dict[tuple[str, str | None], tuple[Any, list]] = {}
        if mode == "w":
            try:
                os.makedirs(path, mode=0o700, exist_ok=True)
            except OSError as e:
                raise OptionError(f"cannot create image directory {path}: {e.strerror}") from None
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ImageError(path, None, "image directory does not exist") from None
        except NotADirectoryError:
            raise ImageError(path, None, "not a directory") from None
        except OSError as e:
            raise ImageError(path, None, f"cannot open image directory: {e.strerror}") from None
        if mode == "w":
            present = os.listdir(self._fd)
            if others_ok:
                present = [n for n in present if n == INCOMPLETE_MARKER or type_by_filename(n) is not None]
            if present:
                self.close()
                raise OptionError(f"image directory {path} is not empty" +
                                  (f" (it has {present[0]})" if others_ok else ""))

    # lifetime
    def fileno(self) -> int:
        """The directory fd (what plugins get from criu_get_image_dir())."""
        if self._fd < 0:
            raise ValueError("image directory is closed")
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ImageDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ImageDir({self.path!r}, {self.mode!r})"

    # names
    def file_path(self, type_name: str, *, id: Any = None) -> str:
        return os.path.join(self.path, _filename(image_type(type_name), id))

    def exists(self, type_name: str, *, id: Any = None) -> bool:
        name = _filename(image_type(type_name), id)
        try:
            os.stat(name, dir_fd=self.fileno(), follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    # structured images
    def write(self, type_name: str, entries: Iterable[Any], *, id: Any = None, head: Any = None) -> None:
        """Write a whole image atomically (a temporary file, then rename)."""
        t = image_type(type_name)
        name = _filename(t, id)
        self._write_atomic(name, encode(t, entries, head))

    def read(self, type_name: str, *, id: Any = None) -> list:
        return self.read_head(type_name, id=id)[1]

    def keep_checked(self, decoded: dict[tuple[str, str | None], tuple[Any, list]]) -> None:
        """Images the validator decoded and checked, (type, id) -> (head, entries):
        the next read of each gets them instead of the file."""
        self._checked.update(decoded)

    def read_head(self, type_name: str, *, id: Any = None) -> tuple[Any, list]:
        checked = self._checked.pop((type_name, None if id is None else str(id)), None)
        if checked is not None:
            return checked
        t = image_type(type_name)
        name = _filename(t, id)
        if t.raw:
            raise ValueError(f"{t.name} is a raw image; use open_raw()")
        f, size = _open_nofollow_in(self, name)
        with f:
            return decode(t, f, os.path.join(self.path, name), size)

    def read_single(self, type_name: str, *, id: Any = None) -> Any:
        entries = self.read(type_name, id=id)
        if len(entries) != 1:
            raise ImageError(
                self.file_path(type_name, id=id), None, f"expected exactly one entry, found {len(entries)}"
            )
        return entries[0]

    # raw images
    def open_raw(self, type_name: str, *, id: Any, mode: str = "rb") -> io.BufferedIOBase:
        t = image_type(type_name)
        if not t.raw:
            raise ValueError(f"{t.name} is not a raw image")
        name = _filename(t, id)
        if mode == "rb":
            return _open_nofollow_in(self, name)[0]
        flags = {
            "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
            "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            "r+b": os.O_RDWR,
        }.get(mode)
        if flags is None:
            raise ValueError(f"bad raw image mode {mode!r}")
        try:
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.fileno())
        except OSError as e:
            raise ImageError(os.path.join(self.path, name), None, f"cannot open: {e.strerror}") from None
        return _Writer(os.fdopen(fd, mode), os.path.join(self.path, name))  # type: ignore[return-value]

    # the incomplete marker
    def mark_incomplete(self, reason: str) -> None:
        """Say why the dump failed.  The first call of a dump (IN_PROGRESS) may
        raise; later ones never do: on a full disk the marker written first
        stays, and the error that reached the user is the write that failed."""
        try:
            self._write_atomic(INCOMPLETE_MARKER, reason.encode("utf-8", "replace") + b"\n")
        except ImageError:
            if reason == IN_PROGRESS or self.is_incomplete() is None:
                raise

    def clear_incomplete(self) -> None:
        """The last step of a dump that succeeded."""
        try:
            os.unlink(INCOMPLETE_MARKER, dir_fd=self.fileno())
        except FileNotFoundError:
            pass

    def is_incomplete(self) -> str | None:
        """The reason a dump into this directory failed, or None."""
        try:
            os.stat(INCOMPLETE_MARKER, dir_fd=self.fileno(), follow_symlinks=False)
        except FileNotFoundError:
            return None
        try:
            f, _ = _open_nofollow_in(self, INCOMPLETE_MARKER)
        except ImageError:
            return "dump did not complete (marker unreadable)"
        with f:
            text = f.read(4096).decode("utf-8", "replace").strip()
        return text or "dump did not complete"

    # helpers
    def _write_atomic(self, name: str, data: bytes) -> None:
        dfd = self.fileno()
        tmp = f".{name}.tmp"
        try:
            os.unlink(tmp, dir_fd=dfd)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as e:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise ImageError(os.path.join(self.path, name), None, f"cannot write: {e.strerror}") from None


class _Writer:
    """A raw image open for writing: a failed write (ENOSPC, EDQUOT, EIO) is
    an ImageError naming the file, not a bare OSError."""

    def __init__(self, f: io.BufferedIOBase, path: str) -> None:
        self._f, self._path = f, path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def _do(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except OSError as e:
            raise ImageError(self._path, None, f"cannot write: {e.strerror}") from None

    def write(self, data: Any) -> int:
        return self._do(self._f.write, data)

    def flush(self) -> None:
        self._do(self._f.flush)

    def splice_in(self, fd: int, count: int) -> None:
        """Move count bytes from the pipe fd to the end of what was written."""
        self.flush()
        out = self._f.fileno()
        while count:
            moved = self._do(os.splice, fd, out, count)
            if not moved:
                raise ImageError(self._path, None, f"cannot write: the pipe ran dry with {count} bytes to go")
            count -= moved

    def close(self) -> None:
        self._do(self._f.close)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_nofollow_in(d: ImageDir, name: str) -> tuple[io.BufferedReader, int]:
    return _open_nofollow(name, dir_fd=d.fileno(), shown=os.path.join(d.path, name))
