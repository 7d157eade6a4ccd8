"""images/devnodes.py: a removed device node is made again only if /dev has
a node of the same type and number (here a test directory stands for /dev)."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

import pytest

from refcr.images import devnodes

TUN, LOOP7, FUSE = os.makedev(10, 200), os.makedev(7, 7), os.makedev(10, 229)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[str]:
    """A /dev with a character node in a subdirectory, a block node, and a
    symlink to a character node that is nowhere else (not a node itself)."""
    root = tmp_path / "dev"
    (root / "net").mkdir(parents=True)
    os.mknod(root / "net" / "tun", stat.S_IFCHR | 0o600, TUN)
    os.mknod(root / "loop7", stat.S_IFBLK | 0o600, LOOP7)
    (tmp_path / "elsewhere").mkdir()
    os.mknod(tmp_path / "elsewhere" / "fuse", stat.S_IFCHR | 0o600, FUSE)
    os.symlink(tmp_path / "elsewhere" / "fuse", root / "fuse")
    devnodes._nodes.cache_clear()
    yield str(root)
    devnodes._nodes.cache_clear()


def test_nodes_of_dev_are_found_by_type_and_number(dev: str) -> None:
    assert devnodes.host_node(stat.S_IFCHR, TUN, dev) == f"{dev}/net/tun"
    assert devnodes.host_node(stat.S_IFBLK, LOOP7, dev) == f"{dev}/loop7"
    assert devnodes.refusal(stat.S_IFCHR | 0o620, TUN, dev) is None
    assert devnodes.refusal(stat.S_IFBLK | 0o640, LOOP7, dev) is None


def test_other_type_same_number_refused(dev: str) -> None:
    """A character 7:7 is not the block loop7, nor a block 10:200 the tun."""
    why = devnodes.refusal(stat.S_IFCHR | 0o600, LOOP7, dev)
    assert why is not None and "character device 7:7" in why and "\n" not in why
    assert devnodes.refusal(stat.S_IFBLK | 0o600, TUN, dev) is not None


def test_symlinked_and_absent_devices_refused(dev: str) -> None:
    why = devnodes.refusal(stat.S_IFCHR | 0o600, FUSE, dev)
    assert why is not None and "10:229" in why
    assert devnodes.refusal(stat.S_IFBLK | 0o600, os.makedev(8, 0), dev) is not None


def test_not_a_device_refused(dev: str) -> None:
    assert devnodes.refusal(stat.S_IFREG | 0o600, TUN, dev) is not None
