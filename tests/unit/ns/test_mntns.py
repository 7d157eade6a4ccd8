"""The mount tree's dump-side decisions (refcr/ns/mntns.py) on made-up mountinfo."""

from __future__ import annotations

import pytest

from refcr.errors import DumpError, OptionError
from refcr.external import check_external
from refcr.ns import mntns
from refcr.ns.mountapi import ATTR_NOATIME, ATTR_NOSUID, ATTR_RDONLY, ATTR_STRICTATIME, attrs_of
from refcr.pb import mntns_pb2

How = mntns_pb2.MountEntry

HOST = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw
"""

# the namespace: a copy of HOST (proc made anew), plus its own mounts
NS = """\
40 39 254:0 / / rw,relatime - ext4 /dev/vda rw
41 40 0:50 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
42 40 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,mode=755
43 42 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
44 43 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw
45 40 0:60 / /w/my\\040tmp rw,relatime shared:7 - tmpfs mine rw,size=1024k
46 40 0:60 /sub /w/dst ro,nosuid,noatime shared:7 - tmpfs mine rw,size=1024k
47 40 254:0 /w/hostdir /w/dst2 rw,relatime master:7 - ext4 /dev/vda rw
48 40 0:70 /console /w/console rw,relatime unbindable - tmpfs zdtm-ext rw
"""


def classify(ns_text: str, keys: dict[str, str] | None = None) -> list[mntns_pb2.MountEntry]:
    ns = mntns.tree_order(mntns.parse_mountinfo(ns_text))
    cls = mntns.Classifier(ns, mntns.parse_mountinfo(HOST), keys or {})
    out = []
    for m in ns:
        e = mntns_pb2.MountEntry(mnt_id=m.mnt_id, mountpoint=m.mountpoint, root=m.root)
        cls.classify(m, e)
        out.append(e)
    return out


def test_parse_unescapes_and_reads_tags():
    m = {x.mnt_id: x for x in mntns.parse_mountinfo(NS)}
    assert m[45].mountpoint == "/w/my tmp"
    assert (m[45].tag("shared"), m[45].tag("master")) == (7, 0)
    assert (m[47].tag("shared"), m[47].tag("master")) == (0, 7)
    assert "unbindable" in m[48].optional
    assert (m[46].fstype, m[46].source, m[46].super_options, m[46].dev) == ("tmpfs", "mine", "rw,size=1024k", "0:60")


def test_classify():
    ns_without_ext = "\n".join(line for line in NS.splitlines() if not line.startswith("48 "))
    hows = {e.mnt_id: e for e in classify(ns_without_ext)}
    assert hows[40].how == How.BIND_HOST and hows[40].host_path == "/" and list(hows[40].host_chain) == ["/"]
    assert hows[41].how == How.CREATE                      # its own proc
    assert hows[43].how == How.BIND_HOST and list(hows[43].host_chain) == ["/", "/dev", "/dev/shm"]
    assert list(hows[44].host_chain) == ["/", "/dev", "/dev/shm", "/dev/shm"]   # the one on top
    assert hows[45].how == How.CREATE                      # a tmpfs made inside
    assert hows[46].how == How.BIND_INTERNAL and hows[46].bind_of == 45
    assert hows[47].how == How.BIND_HOST and hows[47].host_path == "/w/hostdir"


def test_external_needs_option_or_plugin():
    with pytest.raises(DumpError, match=r"mount /w/console .*--external mnt\[/w/console\]:KEY"):
        classify(NS)
    e = {x.mnt_id: x for x in classify(NS, {"/w/console": "console"})}[48]
    assert (e.how, e.ext_key) == (How.EXTERNAL_KEY, "console")


def test_tree_order_puts_hidden_mounts_first():
    # listed by allocation (as in a restored namespace): the one over ov before the one under it
    text = """\
10 1 8:1 / / rw - ext4 /dev/sda rw
13 11 0:3 / /ov rw - tmpfs top rw
11 10 0:1 / /ov rw - tmpfs low rw
12 11 0:2 / /ov/inner rw - tmpfs inner rw
14 10 0:4 / /dev/pts rw - devpts devpts rw
15 10 0:5 / /dev rw - devtmpfs dev rw
"""
    order = [m.mnt_id for m in mntns.tree_order(mntns.parse_mountinfo(text))]
    assert order.index(11) < order.index(12) < order.index(13)     # parent, hidden child, then the one over it
    assert order.index(14) < order.index(15)       # siblings: the deeper path first (/dev/pts is under nothing here)
    assert order[0] == 10


def test_two_roots_refused():
    with pytest.raises(DumpError, match="2 root mounts"):
        mntns.tree_order(mntns.parse_mountinfo("1 0 8:1 / / rw - ext4 a rw\n2 0 8:1 / /x rw - ext4 a rw\n"))


def test_options():
    assert mntns.fs_options("rw,size=1024k,mode=755,inode64") == [("size", "1024k"), ("mode", "755"),
                                                                   ("inode64", None)]
    assert attrs_of("ro,nosuid,noatime") == ATTR_RDONLY | ATTR_NOSUID | ATTR_NOATIME
    assert attrs_of("rw") == ATTR_STRICTATIME
    assert attrs_of("rw,relatime") == 0


def test_external_mnt_options():
    check_external(["mnt[/dev/console]:console", "mnt[console]:/srv/c"])
    with pytest.raises(OptionError, match=r"mnt\[/x\]"):
        check_external(["mnt[/x]"])
    assert mntns.ext_keys(["mnt[/a/../b]:k", "unix[1]"]) == {"/b": "k"}
    assert mntns.ext_paths(["mnt[k]:/p"]) == {"k": "/p"}
    with pytest.raises(OptionError, match="no mount namespace"):
        mntns.check_no_namespace(["mnt[k]:/p"])


def test_restore_mappings_checked_before_anything():
    e = mntns_pb2.MountEntry(mnt_id=5, mountpoint="/c", how=How.EXTERNAL_KEY, ext_key="console")
    with pytest.raises(OptionError, match=r"--external mnt\[console\]:PATH"):
        mntns.prepare_sources([e], [])
    with pytest.raises(OptionError, match=r"mnt\[other\]"):
        mntns.prepare_sources([e], ["mnt[console]:/x", "mnt[other]:/y"])


def test_untrusted_entries_refused():
    from refcr.errors import RestoreError

    root = mntns_pb2.MountEntry(mnt_id=1, mountpoint="/", root="/", how=How.BIND_HOST, host_chain=["/"])

    def bad(**kw) -> None:
        with pytest.raises(RestoreError, match="mntns.img"):
            mntns.check_entries([root, mntns_pb2.MountEntry(mnt_id=2, parent_id=1, root="/", **kw)])

    bad(mountpoint="/a/../../etc")
    bad(mountpoint="relative")
    bad(mountpoint="/b", how=How.BIND_HOST, host_subpath="../x", host_chain=["/"])
    bad(mountpoint="/b", how=How.BIND_INTERNAL, bind_of=1)
    bad(mountpoint="/b", how=How.CREATE, fstype="ext4")
    with pytest.raises(RestoreError, match="tree order"):
        mntns.check_entries([root, mntns_pb2.MountEntry(mnt_id=3, parent_id=9, mountpoint="/c", root="/")])
    mntns.check_entries([root, mntns_pb2.MountEntry(mnt_id=2, parent_id=1, mountpoint="/t", root="/",
                                                    how=How.CREATE, fstype="tmpfs")])


def test_container_root_elsewhere_on_the_host():
    # the container's root is a host directory (LXC's dir backend); a bind below it is visible through it,
    # a file of another host file system is not
    ns = """\
50 49 254:0 /srv/ct/rootfs / rw,relatime - ext4 /dev/vda rw
51 50 254:0 /srv/ct/rootfs/data /data rw,relatime - ext4 /dev/vda rw
52 50 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
53 50 0:23 /console /dev/console rw,relatime - tmpfs tmpfs rw
"""
    keys = {"/dev/console": "c"}
    e = {x.mnt_id: x for x in classify(ns)}
    assert e[50].how == How.BIND_HOST and e[50].host_path == "/srv/ct/rootfs"
    assert e[51].how == How.BIND_HOST and e[51].host_path == "/srv/ct/rootfs/data"
    assert e[52].how == How.BIND_HOST                  # a whole file system refcr sees
    assert e[53].how == How.BIND_HOST                  # below a visible mount of it (the one just above)
    e = {x.mnt_id: x for x in classify(ns.replace("52 50 0:23 / /dev/shm", "52 50 0:99 / /dev/shm"), keys)}
    assert e[53].how == How.EXTERNAL_KEY
