"""Incremental images (refcr/mm/track.py): page sets, the parent link as
untrusted input, chain resolution on restore, the hash method's decisions."""

from __future__ import annotations

import os

import pytest

from refcr.errors import ImageError, OptionError
from refcr.images.imagedir import ImageDir
from refcr.mm import pages as page_io
from refcr.mm import track
from refcr.pb import inventory_pb2

PG = 4096


def _page(seed: int) -> bytes:
    return bytes([seed % 251]) * PG


def _image(path, pages: dict[int, bytes | None], parent: str | None = None, pid: int = 7) -> ImageDir:
    """An image dir whose pagemap-PID stores `pages` (vaddr -> data, None =
    in the parent), linked to `parent`."""
    d = ImageDir(str(path), "w")
    if parent is not None:
        os.symlink(parent, track.PARENT_LINK, dir_fd=d.fileno())
    out = page_io.PagesWriter(d, 1)
    for vaddr in sorted(pages):
        if pages[vaddr] is None:
            out.add_parent(vaddr, 1)
        else:
            out.add(vaddr, pages[vaddr])
    out.finish("pagemap", pid)
    d.write("inventory", [inventory_pb2.InventoryEntry(img_version=1, root_pid=pid)])
    return d


def _restored(d: ImageDir, pid: int = 7) -> dict[int, bytes]:
    got: dict[int, bytes] = {}
    for vaddr, data in page_io.read_pages(d, "pagemap", pid):
        for off in range(0, len(data), PG):
            got[vaddr + off] = data[off:off + PG]
    return got


def test_pageset_split():
    s = track.PageSet.of([(0x1000, 2), (0x5000, 1)])
    inside, outside = s.split([(0x0, 8)])
    assert inside == [(0x1000, 2), (0x5000, 1)]
    assert outside == [(0x0, 1), (0x3000, 2), (0x6000, 2)]
    assert track.PageSet().split([(0x1000, 3)]) == ([], [(0x1000, 3)])


def test_chain_of_three_restores_each_moment(tmp_path):
    a, b, c = 0x10000, 0x11000, 0x12000
    _image(tmp_path / "d1", {a: _page(1), b: _page(2), c: _page(3)})
    _image(tmp_path / "d2", {a: None, b: _page(20), c: None}, parent="../d1")
    d3 = _image(tmp_path / "d3", {a: _page(100), b: None, c: None}, parent="../d2")
    assert _restored(d3) == {a: _page(100), b: _page(20), c: _page(3)}
    assert _restored(ImageDir(str(tmp_path / "d2"))) == {a: _page(1), b: _page(20), c: _page(3)}


@pytest.mark.parametrize("link", ["/etc", "../../x", "a/../../b", "..", "."])
def test_parent_link_outside_or_odd_is_refused(tmp_path, link):
    _image(tmp_path / "d1", {0x1000: _page(1)})
    d = _image(tmp_path / "d2", {0x1000: None}, parent=link)
    with pytest.raises(ImageError) as err:
        _restored(d)
    assert "parent" in str(err.value)


def test_parent_symlink_escaping_through_a_symlink_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _image(outside / "d1", {0x1000: _page(1)})
    home = tmp_path / "chain"
    home.mkdir()
    os.symlink(outside / "d1", home / "d1")
    d = _image(home / "d2", {0x1000: None}, parent="../d1")
    with pytest.raises(ImageError, match="leads outside"):
        _restored(d)


def test_missing_or_incomplete_parent_is_one_clear_error(tmp_path):
    d = _image(tmp_path / "d2", {0x1000: None}, parent="../d1")
    with pytest.raises(ImageError, match="d1"):
        _restored(d)
    p = _image(tmp_path / "d1", {0x1000: _page(1)})
    p.mark_incomplete("killed")
    with pytest.raises(ImageError, match="not a complete dump"):
        _restored(d)


def test_page_missing_in_parent_is_an_error(tmp_path):
    _image(tmp_path / "d1", {0x1000: _page(1)})
    d = _image(tmp_path / "d2", {0x1000: None, 0x2000: None}, parent="../d1")
    with pytest.raises(ImageError, match="does not have it"):
        _restored(d)


def test_no_parent_link_but_in_parent_pages(tmp_path):
    d = _image(tmp_path / "d2", {0x1000: None})
    with pytest.raises(ImageError, match="no parent link"):
        _restored(d)


def test_prev_images_dir_option_checked(tmp_path):
    _image(tmp_path / "d1", {0x1000: _page(1)})
    d = ImageDir(str(tmp_path / "d2"), "w")
    for bad in ("/abs", "../../up", "../nope"):
        with pytest.raises(OptionError, match="--prev-images-dir"):
            track.link_parent(d, bad)
    parent = track.link_parent(d, "../d1")
    assert os.path.realpath(parent.path) == os.path.realpath(tmp_path / "d1")
    assert os.readlink(tmp_path / "d2" / "parent") == "../d1"


def test_hash_method_stores_only_changed_pages(tmp_path):
    vaddr = 0x40000
    first = _page(1) + _page(2) + _page(3)
    d1 = ImageDir(str(tmp_path / "d1"), "w")
    pt = track.ProcessTrack(7, 7, "hash", True, None)
    out = page_io.PagesWriter(d1, 1)
    pt.store(out, vaddr, first)
    pt.write_digests(d1)
    out.finish("pagemap", 7, pt)
    d1.write("inventory", [inventory_pb2.InventoryEntry(img_version=1, root_pid=7)])

    d2 = ImageDir(str(tmp_path / "d2"), "w")
    parent = track.link_parent(d2, "../d1")
    pt2 = track.ProcessTrack(7, 7, "hash", True, parent)
    pt2.load_parent()
    out2 = page_io.PagesWriter(d2, 1)
    pt2.store(out2, vaddr, _page(1) + _page(9) + _page(3))
    out2.finish("pagemap", 7, pt2)
    head, entries = d2.read_head("pagemap", id=7)
    assert (head.pages_written, head.pages_in_parent) == (1, 2)
    assert [(e.vaddr, e.nr_pages, e.in_parent) for e in entries] == [
        (vaddr, 1, True), (vaddr + PG, 1, False), (vaddr + 2 * PG, 1, True)]
    assert _restored(d2) == {vaddr: _page(1), vaddr + PG: _page(9), vaddr + 2 * PG: _page(3)}


def test_method_choice(monkeypatch):
    monkeypatch.setenv("REFCR_TRACK_MEM_METHOD", "hash")
    assert track.choose_method("auto") == "hash"
    monkeypatch.setenv("REFCR_TRACK_MEM_METHOD", "bogus")
    with pytest.raises(OptionError, match="bogus"):
        track.choose_method("auto")
