"""Objects the caller provides instead of the images: --inherit-fd.

`refcr restore --inherit-fd fd[N]:RES` says: wherever the images have the
resource RES, give the restored tree refcr's own fd N (which the caller
passed in) instead of recreating it.  RES is spelled the way /proc shows an
fd's link: `pipe:[INO]`, `socket:[INO]`, or an absolute path (`file[PATH]`
is accepted too); `net:[INO]` is a network namespace left out of the images
with --external net[INO] (net/extnetns.py); `tty[RDEV:DEV]` (CRIU's spelling:
st_rdev and st_dev in hex) a terminal left out with --external tty[RDEV:DEV]
(drivers/tty.py), or the shell's terminal of a --shell-job as `tty[MAJOR:MINOR]`.
Every option must be well formed, name an fd refcr really has, and match
something in the images: anything else is an error naming the option, never
silently ignored.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from refcr.errors import OptionError, RestoreError

EXTERNAL_RE = re.compile(r"^(unix|file|mnt|dev|veth|macvlan|tty|net)\[([^\]]+)\](?::(.+))?$")
SUPPORTED_EXTERNAL = {"unix", "file", "veth", "mnt", "net", "tty"}
# veth: refcr/net/netns.py (ext_veths); mnt: refcr/ns/mntns.py; net: refcr/net/extnetns.py;
# tty: refcr/drivers/tty.py (ExtTtyKind)
INHERIT_RE = re.compile(r"^fd\[(\d+)\]:(.+)$")
RESOURCE_RE = re.compile(r"^(pipe|socket|net):\[(\d+)\]$|^tty\[([0-9a-fA-F]+:[0-9a-fA-F]+)\]$|^file\[(/.*)\]$|^(/.*)$")


@dataclass
class Inherited:
    """One --inherit-fd: refcr's fd and the resource it stands for."""

    option: str
    fd: int
    resource: str
    used: bool = False


def canonical(resource: str) -> str:
    """One spelling per resource, so image keys and options compare."""
    m = RESOURCE_RE.match(resource)
    if m is None:
        raise ValueError(resource)
    if m.group(1):
        return f"{m.group(1)}:[{int(m.group(2))}]"
    if m.group(3):
        a, b = m.group(3).split(":")
        return f"tty[{int(a, 16):x}:{int(b, 16):x}]"
    return os.path.normpath(m.group(4) or m.group(5))


def check_external(options: list[str]) -> list[int]:
    """Validate every --external; returns the inodes named by unix[INO]
    (which mean the same as --ext-unix-sk INO)."""
    unix: list[int] = []
    for opt in options:
        m = EXTERNAL_RE.match(opt)
        if m is None:
            raise OptionError(f"--external {opt}: expected KIND[ID] with KIND one of unix, file, mnt, dev, "
                              "veth, macvlan, tty, net")
        kind, ident = m.group(1), m.group(2)
        if kind not in SUPPORTED_EXTERNAL:
            raise OptionError(f"--external {opt}: {kind}[...] resources are not supported yet")
        if kind == "unix":
            if not ident.isdigit() or m.group(3):
                raise OptionError(f"--external {opt}: expected unix[INO] (the socket's inode)")
            unix.append(int(ident))
        if kind == "net" and (not ident.isdigit() or m.group(3)):
            raise OptionError(f"--external {opt}: expected net[INO] (the inode of the tree's /proc/PID/ns/net)")
        if kind == "tty" and (m.group(3) or not re.fullmatch(r"[0-9a-fA-F]+:[0-9a-fA-F]+", ident)):
            raise OptionError(f"--external {opt}: expected tty[RDEV:DEV] (st_rdev and st_dev of the terminal, "
                              "in hex)")
        if kind == "mnt" and not m.group(3):
            raise OptionError(f"--external {opt}: expected mnt[MOUNTPOINT]:KEY (dump) or mnt[KEY]:PATH (restore)")
        if kind == "veth":
            ext_veths([opt], restore=False)     # the syntax and the names
    return unix


def parse_inherit_fd(options: list[str]) -> list[Inherited]:
    out: list[Inherited] = []
    for opt in options:
        m = INHERIT_RE.match(opt)
        if m is None:
            raise OptionError(f"--inherit-fd {opt}: expected fd[N]:RESOURCE, e.g. fd[3]:pipe:[12345]")
        fd = int(m.group(1))
        try:
            res = canonical(m.group(2))
        except ValueError:
            raise OptionError(f"--inherit-fd {opt}: unknown resource {m.group(2)!r} "
                              "(pipe:[INO], socket:[INO], net:[INO], tty[RDEV:DEV], file[PATH] or /PATH)") from None
        try:
            os.fstat(fd)
        except (OSError, OverflowError):
            raise OptionError(f"--inherit-fd {opt}: refcr has no open fd {fd}") from None
        if any(i.resource == res for i in out):
            raise OptionError(f"--inherit-fd {opt}: {res} is given twice")
        out.append(Inherited(opt, fd, res))
    return out


@dataclass
class InheritTable:
    """The --inherit-fd options of a restore, and which ones the images used."""

    items: list[Inherited] = field(default_factory=list)

    @classmethod
    def from_options(cls, options: list[str]) -> "InheritTable":
        return cls(parse_inherit_fd(options))

    def take(self, resource: str) -> int | None:
        """A dup of the inherited fd standing for `resource`, or None."""
        for item in self.items:
            if item.resource == resource:
                item.used = True
                return os.dup(item.fd)
        return None

    def check_all_used(self) -> None:
        unused = [i.option for i in self.items if not i.used]
        if unused:
            raise RestoreError(f"--inherit-fd {unused[0]}: matches nothing in the images")


# --external veth[NAME]:OUT[@BRIDGE] (used by net/netns.py)

IFNAME_RE = re.compile(r"^[A-Za-z0-9_.@:+-]{1,15}$")


@dataclass
class ExtVeth:
    """--external veth[NAME]:OUT[@BRIDGE]: NAME inside, OUT in refcr's namespace."""

    option: str
    name: str
    outside: str | None = None
    bridge: str | None = None
    used: bool = False


def check_ifname(name: str, what: str) -> str:
    if not IFNAME_RE.match(name) or name in (".", ".."):
        raise OptionError(f"{what}: {name!r} is not an interface name")
    return name


def ext_veths(options: list[str], restore: bool) -> dict[str, ExtVeth]:
    """The --external veth[...] options by inside name.  At restore each needs :OUT."""
    out: dict[str, ExtVeth] = {}
    for opt in options:
        if not opt.startswith("veth["):
            continue
        m = re.match(r"^veth\[([^\]]+)\](?::([^@]+)(?:@(.+))?)?$", opt)
        if m is None:
            raise OptionError(f"--external {opt}: expected veth[IFNAME] or veth[IFNAME]:OUTNAME[@BRIDGE]")
        what = f"--external {opt}"
        e = ExtVeth(opt, check_ifname(m.group(1), what))
        if m.group(2):
            e.outside = check_ifname(m.group(2), what)
            e.bridge = check_ifname(m.group(3), what) if m.group(3) else None
        elif restore:
            raise OptionError(f"{what}: a restore needs the outside name: veth[IFNAME]:OUTNAME[@BRIDGE]")
        if e.name in out:
            raise OptionError(f"{what}: {e.name} is named twice")
        out[e.name] = e
    return out
