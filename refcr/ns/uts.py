"""The UTS namespace: host name and NIS domain name.

Dump: uname(2) injected into a task of the namespace (the names belong to
the namespace, so any of its tasks will do).  Restore: sethostname(2) and
setdomainname(2) injected into a puppet that already lives in a fresh UTS
namespace, so nothing outside it changes.

Image ``uts`` (uts.img): one UtsEntry.
"""
from __future__ import annotations

from refcr.errors import RestoreError, UnsupportedObject
from refcr.pb import uts_pb2
from refcr.ptrace.tracee import Remote

UTS_LEN = 65                         # each field of struct utsname, NUL included
_NODENAME, _DOMAINNAME = 1, 5        # field indexes: sysname nodename release version machine domainname


def _field(buf: bytes, index: int, what: str, tid: int) -> str:
    raw = buf[index * UTS_LEN:(index + 1) * UTS_LEN].split(b"\0", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedObject(f"task {tid}: the {what} {raw!r} is not valid UTF-8") from None


def dump(remote: Remote) -> uts_pb2.UtsEntry:
    """Read the names of the UTS namespace ``remote``'s task is in."""
    if not remote.scratch:
        raise ValueError("uts.dump needs a Remote with a scratch buffer")
    remote.check("uname", remote.scratch)
    buf = remote.get(remote.scratch, 6 * UTS_LEN)
    return uts_pb2.UtsEntry(nodename=_field(buf, _NODENAME, "host name", remote.tid),
                            domainname=_field(buf, _DOMAINNAME, "domain name", remote.tid))


def restore(remote: Remote, e: uts_pb2.UtsEntry) -> None:
    """Set both names in the (fresh) UTS namespace of ``remote``'s puppet."""
    if not remote.scratch:
        raise ValueError("uts.restore needs a Remote with a scratch buffer")
    for call, value, what in (("sethostname", e.nodename, "host name"),
                              ("setdomainname", e.domainname, "domain name")):
        data = value.encode("utf-8")
        if len(data) >= UTS_LEN:  # image input: the kernel would say EINVAL, say why
            raise RestoreError(f"uts.img: {what} of {len(data)} bytes is longer than 64")
        addr = remote.put(data + b"\0")[0]
        remote.check(call, addr, len(data))
