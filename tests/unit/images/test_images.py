"""The image file format: round trips, strict reading, `refcr show`."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest

from refcr.errors import ImageError, OptionError
from refcr.images import imagedir
from refcr.images.imagedir import IMAGE_TYPES, ImageDir, decode_file
from refcr.images.show import main_show, show
from refcr.pb import inventory_pb2, pagemap_pb2, pstree_pb2

U32 = struct.Struct("<I")


def _pstree(n: int) -> list:
    return [pstree_pb2.PstreeEntry(pid=100 + i, ppid=99 + i if i else 0, threads=[100 + i]) for i in range(n)]


@pytest.fixture
def imgdir(tmp_path):
    d = ImageDir(str(tmp_path / "img"), "w")
    yield d
    d.close()


def _good_pstree_file(d: ImageDir) -> tuple[str, list[int]]:
    """Write a pstree image of 3 entries; return its path and entry offsets."""
    entries = _pstree(3)
    d.write("pstree", entries)
    offsets, off = [], 4
    for e in entries:
        offsets.append(off)
        off += 4 + len(e.SerializeToString())
    return d.file_path("pstree"), offsets


# -- registry ------------------------------------------------------------------


def test_registry_is_consistent():
    magics = [t.magic for t in IMAGE_TYPES.values() if not t.raw]
    assert len(magics) == len(set(magics))
    assert all(0 < m < 2**32 for m in magics)
    for name in (
        "inventory",
        "pstree",
        "core",
        "mm",
        "pagemap",
        "pagemap-shmem",
        "pages",
        "fdinfo",
        "files",
        "pipes-data",
    ):
        t = IMAGE_TYPES[name]
        if not t.raw:
            t.entry_class()  # every message named exists in refcr.pb
            t.head_class()
    assert IMAGE_TYPES["pages"].raw and IMAGE_TYPES["pagemap"].head


def test_type_by_filename():
    assert imagedir.type_by_filename("pagemap-shmem-7.img")[0].name == "pagemap-shmem"
    assert imagedir.type_by_filename("pagemap-7.img") == (IMAGE_TYPES["pagemap"], "7")
    assert imagedir.type_by_filename("inventory.img") == (IMAGE_TYPES["inventory"], None)
    assert imagedir.type_by_filename("core-../x.img") is None
    assert imagedir.type_by_filename("whatever.img") is None


# -- round trips ---------------------------------------------------------------


def test_round_trip(imgdir):
    inv = inventory_pb2.InventoryEntry(img_version=1, root_pid=42, plugins=["a", "b"])
    imgdir.write("inventory", [inv])
    assert imgdir.exists("inventory")
    assert imgdir.read_single("inventory") == inv

    imgdir.write("pstree", _pstree(3))
    assert imgdir.read("pstree") == _pstree(3)

    head = pagemap_pb2.PagemapHead(pages_id=5)
    ents = [pagemap_pb2.PagemapEntry(vaddr=0x400000 + i * 4096, nr_pages=i + 1) for i in range(4)]
    imgdir.write("pagemap", ents, id=42, head=head)
    assert imgdir.read_head("pagemap", id=42) == (head, ents)
    assert imgdir.read("pagemap", id=42) == ents
    assert not imgdir.exists("pagemap", id=43)
    assert imgdir.file_path("pagemap", id=42) == os.path.join(imgdir.path, "pagemap-42.img")

    with imgdir.open_raw("pages", id=5, mode="wb") as f:
        f.write(b"\xaa" * 8192)
    with imgdir.open_raw("pages", id=5) as f:
        assert f.read() == b"\xaa" * 8192

    # an empty image is valid and has no entries
    imgdir.write("files", [])
    assert imgdir.read("files") == []
    # no temporary files are left behind
    assert sorted(os.listdir(imgdir.path)) == sorted(
        ["inventory.img", "pstree.img", "pagemap-42.img", "pages-5.img", "files.img"]
    )


def test_on_disk_layout(imgdir):
    e = pstree_pb2.PstreeEntry(pid=1)
    imgdir.write("pstree", [e])
    raw = open(imgdir.file_path("pstree"), "rb").read()
    body = e.SerializeToString()
    assert raw == U32.pack(IMAGE_TYPES["pstree"].magic) + U32.pack(len(body)) + body


def test_write_checks_types_and_ids(imgdir):
    with pytest.raises(TypeError):
        imgdir.write("pstree", [inventory_pb2.InventoryEntry()])
    with pytest.raises(ValueError):
        imgdir.write("pagemap", [], id=1)  # head missing
    with pytest.raises(ValueError):
        imgdir.write("core", [])  # id missing
    with pytest.raises(ValueError):
        imgdir.file_path("core", id="../../etc/passwd")
    with pytest.raises(ValueError):
        imgdir.write("inventory", [], id=3)


def test_read_single_needs_one(imgdir):
    imgdir.write("pstree", _pstree(2))
    with pytest.raises(ImageError, match="exactly one"):
        imgdir.read_single("pstree")


def test_dir_modes(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        ImageDir(str(tmp_path / "nope"))
    d = tmp_path / "full"
    d.mkdir()
    (d / "x").write_text("x")
    with pytest.raises(OptionError, match="is not empty"):
        ImageDir(str(d), "w")
    with ImageDir(str(tmp_path / "new" / "deeper"), "w") as w:
        w.write("pstree", _pstree(1))
    assert ImageDir(str(tmp_path / "new" / "deeper")).read("pstree") == _pstree(1)


def test_incomplete_marker(imgdir):
    assert imgdir.is_incomplete() is None
    imgdir.mark_incomplete("seize failed: pid 5 is traced")
    assert imgdir.is_incomplete() == "seize failed: pid 5 is traced"
    assert ImageDir(imgdir.path).is_incomplete() == "seize failed: pid 5 is traced"


# -- strict reading --------------------------------------------------------------


def _corrupt(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _expect(d: ImageDir, offset, what: str) -> None:
    path = d.file_path("pstree")
    with pytest.raises(ImageError, match=what) as ei:
        d.read("pstree")
    assert ei.value.offset == offset
    assert ei.value.path == path
    # decode_file (used by `refcr show`) reports the same
    with pytest.raises(ImageError) as ei2:
        decode_file(path)
    assert ei2.value.offset == offset


def test_missing_image(imgdir):
    with pytest.raises(ImageError, match="missing image") as ei:
        imgdir.read("pstree")
    assert ei.value.offset is None
    assert ei.value.path == imgdir.file_path("pstree")


def test_empty_file(imgdir):
    path, _ = _good_pstree_file(imgdir)
    _corrupt(path, b"")
    _expect(imgdir, 0, "empty file")


def test_truncated_magic(imgdir):
    path, _ = _good_pstree_file(imgdir)
    _corrupt(path, open(path, "rb").read()[:3])
    _expect(imgdir, 0, "truncated magic")


def test_wrong_magic(imgdir):
    path, _ = _good_pstree_file(imgdir)
    data = open(path, "rb").read()
    _corrupt(path, U32.pack(IMAGE_TYPES["core"].magic) + data[4:])
    _expect(imgdir, 0, r"wrong magic .*\(core image\)")
    _corrupt(path, b"\xde\xad\xbe\xef" + data[4:])
    with pytest.raises(ImageError, match="unknown magic"):
        imgdir.read("pstree")


def test_truncated_length(imgdir):
    path, offs = _good_pstree_file(imgdir)
    data = open(path, "rb").read()
    _corrupt(path, data + b"\x05\x00")
    _expect(imgdir, len(data), "truncated entry length")


def test_truncated_body(imgdir):
    path, offs = _good_pstree_file(imgdir)
    data = open(path, "rb").read()
    _corrupt(path, data[:-1])
    _expect(imgdir, offs[2], "runs past the end")


def test_absurd_length(imgdir):
    path, offs = _good_pstree_file(imgdir)
    data = bytearray(open(path, "rb").read())
    data[offs[1] : offs[1] + 4] = U32.pack(0xFFFFFFF0)
    _corrupt(path, bytes(data))
    _expect(imgdir, offs[1], "over the .* limit")


def test_garbage_message(imgdir):
    path, offs = _good_pstree_file(imgdir)
    data = open(path, "rb").read()
    garbage = b"\xff" * 11  # a varint longer than 10 bytes never decodes
    _corrupt(path, data[: offs[1]] + U32.pack(len(garbage)) + garbage + data[offs[2] :])
    _expect(imgdir, offs[1], "undecodable PstreeEntry")


def test_missing_head(imgdir):
    imgdir.write("pagemap", [], id=1, head=pagemap_pb2.PagemapHead())
    path = imgdir.file_path("pagemap", id=1)
    _corrupt(path, open(path, "rb").read()[:4])
    with pytest.raises(ImageError, match="missing PagemapHead") as ei:
        imgdir.read_head("pagemap", id=1)
    assert ei.value.offset == 4


def test_symlink_image_not_followed(imgdir, tmp_path):
    outside = tmp_path / "outside.img"
    with ImageDir(str(tmp_path / "other"), "w") as o:
        o.write("pstree", _pstree(1))
        os.rename(o.file_path("pstree"), outside)
    os.symlink(outside, imgdir.file_path("pstree"))
    _expect(imgdir, None, "symlink")
    assert imgdir.exists("pstree")  # it is there, it just is not read
    # writing replaces the link itself, never the file it points to
    imgdir.write("pstree", _pstree(2))
    assert not os.path.islink(imgdir.file_path("pstree"))
    assert decode_file(str(outside))[2] == _pstree(1)
    assert ImageDir(imgdir.path).read("pstree") == _pstree(2)


def test_raw_symlink_not_followed(imgdir, tmp_path):
    target = tmp_path / "secret"
    target.write_bytes(b"secret")
    os.symlink(target, imgdir.file_path("pages", id=1))
    with pytest.raises(ImageError, match="symlink"):
        imgdir.open_raw("pages", id=1)
    with pytest.raises(ImageError):
        imgdir.open_raw("pages", id=1, mode="wb")
    assert target.read_bytes() == b"secret"


def test_not_a_regular_file(imgdir):
    os.mkdir(imgdir.file_path("pstree"))
    _expect(imgdir, None, "not a regular file")


def test_decode_file_by_magic(imgdir, tmp_path):
    path, _ = _good_pstree_file(imgdir)
    renamed = tmp_path / "renamed"
    os.rename(path, renamed)
    t, head, entries = decode_file(str(renamed))
    assert t.name == "pstree" and head is None and entries == _pstree(3)


# -- refcr show ----------------------------------------------------------------


def _populate(d: ImageDir) -> None:
    d.write("inventory", [inventory_pb2.InventoryEntry(img_version=1, root_pid=100)])
    d.write("pstree", _pstree(2))
    d.write(
        "pagemap", [pagemap_pb2.PagemapEntry(vaddr=4096, nr_pages=2)], id=100, head=pagemap_pb2.PagemapHead(pages_id=1)
    )
    with d.open_raw("pages", id=1, mode="wb") as f:
        f.write(b"\0" * 8192)


def test_show_dir(imgdir, capsys):
    _populate(imgdir)
    assert main_show([imgdir.path]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out) == ["inventory.img", "pagemap-100.img", "pages-1.img", "pstree.img"]
    assert out["pages-1.img"] == {"type": "pages", "raw": True, "size": 8192}
    assert out["inventory.img"]["entries"] == [{"img_version": 1, "root_pid": 100}]
    assert out["pagemap-100.img"]["head"] == {"pages_id": 1}
    assert out["pagemap-100.img"]["entries"][0]["nr_pages"] == 2
    assert [e["pid"] for e in out["pstree.img"]["entries"]] == [100, 101]


def test_show_file(imgdir, capsys):
    _populate(imgdir)
    assert main_show([imgdir.file_path("pstree"), "--compact"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out)["type"] == "pstree"


def test_show_dir_rejects_unknown_files(imgdir):
    _populate(imgdir)
    with open(os.path.join(imgdir.path, "stray.img"), "wb") as f:
        f.write(U32.pack(IMAGE_TYPES["pstree"].magic))
    with pytest.raises(ImageError, match="not an image file"):
        show(imgdir.path)


def test_show_dir_rejects_corrupt_and_mismatched(imgdir):
    _populate(imgdir)
    # a pstree image under the name of an inventory image
    os.replace(imgdir.file_path("pstree"), imgdir.file_path("inventory"))
    with pytest.raises(ImageError, match="wrong magic") as ei:
        show(imgdir.path)
    assert ei.value.path.endswith("inventory.img") and ei.value.offset == 0


def test_show_incomplete_dir(imgdir):
    _populate(imgdir)
    imgdir.mark_incomplete("boom")
    assert show(imgdir.path)["INCOMPLETE"] == {"incomplete": "boom"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "refcr", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )


def test_cli_show_good_dir(imgdir):
    _populate(imgdir)
    r = _cli("show", imgdir.path)
    assert r.returncode == 0, r.stderr
    assert "pstree.img" in json.loads(r.stdout)


def test_cli_show_corrupt_file(imgdir):
    path, offs = _good_pstree_file(imgdir)
    _corrupt(path, open(path, "rb").read()[:-1])
    r = _cli("show", path)
    assert r.returncode != 0
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert path in lines[0] and f"offset {offs[2]}" in lines[0]


def test_show_dir_lists_logs_and_plugin_files(imgdir):
    _populate(imgdir)
    with open(os.path.join(imgdir.path, "dump.log"), "w") as f:
        f.write("log\n")
    out = show(imgdir.path)
    assert out["dump.log"] == {"other": True, "size": 4}
    assert out["pstree.img"]["type"] == "pstree"
