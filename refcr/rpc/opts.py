"""criu_opts (proto/rpc.proto) to refcr's Options: every field a request
sets is either honoured or refused by name, none is dropped.

Which is which is one table (HANDLERS, by field name): a handler puts the
field's meaning into the Options being built; a field that has none gets
REFUSED's reason.  Fields the table does not know (a newer protocol) are
refused by their number.  Default values count as unset (proto2 presence),
so a client that spells out a default gets no refusal.

The client's fds (images_dir_fd, work_dir_fd, inherit_fd) are fds of the
client process: the image and work directories are opened through
/proc/PEER/fd/N, the inherited ones copied with pidfd_getfd.  What this
costs: one open or one pidfd_getfd per fd, done before anything else.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from google.protobuf import unknown_fields

from refcr.errors import OptionError
from refcr.log import LOG_WARN
from refcr.options import Options
from refcr.pb import rpc_pb2
from refcr.ptrace import native

CLONE_NEWNET = 0x40000000


@dataclass
class Request:
    """One request's options, being translated; what it opened is closed with it."""

    msg: rpc_pb2.criu_opts
    peer: int                                   # the client's pid
    command: str                                # dump, pre-dump, restore
    opts: Options = field(default_factory=Options)
    work_dir: str | None = None                 # log file and pidfile go here
    owned: list[int] = field(default_factory=list)
    notify_scripts: bool = False
    ext_mnt: list[tuple[str, str]] = field(default_factory=list)

    def close(self) -> None:
        for fd in self.owned:
            try:
                os.close(fd)
            except OSError:
                pass
        self.owned.clear()

    def client_dir(self, fd: int, what: str) -> str:
        """A path for the client's directory fd: its own path when that names
        the same directory here, else /proc/self/fd/M of a copy."""
        link = f"/proc/{self.peer}/fd/{fd}"
        try:
            local = os.open(link, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise OptionError(f"criu_opts.{what} {fd}: not an open directory of the client "
                              f"({exc.strerror})") from None
        self.owned.append(local)
        try:
            path = os.readlink(link)
            st, here = os.stat(path), os.fstat(local)
            if (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino):
                return path
        except OSError:
            pass
        return f"/proc/self/fd/{local}"


def _set(name: str) -> Callable[[Request, object], None]:
    def handler(r: Request, value: object) -> None:
        setattr(r.opts, name, value)
    return handler


def _images_dir_fd(r: Request, fd: int) -> None:
    if fd >= 0:
        r.opts.images_dir = r.client_dir(fd, "images_dir_fd")


def _images_dir(r: Request, path: str) -> None:
    if not r.opts.images_dir:
        if not os.path.isabs(path):
            raise OptionError(f"criu_opts.images_dir {path!r}: not an absolute path")
        r.opts.images_dir = path


def _work_dir_fd(r: Request, fd: int) -> None:
    r.work_dir = r.client_dir(fd, "work_dir_fd")


def _log_file(r: Request, name: str) -> None:
    if "/" in name or name in ("", ".", ".."):
        raise OptionError(f"criu_opts.log_file {name!r}: a file name in the work directory, not a path")
    r.opts.log_file = name          # placed in the work (or image) directory by finish()


def _log_level(r: Request, level: int) -> None:
    r.opts.verbosity = max(0, min(4, level))


def _ext_unix_sk(r: Request, on: bool) -> None:
    if on:
        r.opts.ext_unix_sk.append("")


def _unix_sk_ino(r: Request, socks: list) -> None:
    r.opts.ext_unix_sk.extend(str(s.inode) for s in socks)


def _veths(r: Request, pairs: list) -> None:
    r.opts.external.extend(f"veth[{p.if_in}]:{p.if_out}" for p in pairs)


def _ext_mnt(r: Request, maps: list) -> None:
    # CRIU's --ext-mount-map: at dump MOUNTPOINT:KEY, at restore KEY:PATH; refcr
    # spells both as --external mnt[..]:..  Unlike --external, CRIU takes the
    # map as "where these exist": runc names every device and cgroup mount it
    # might have made, so pairs that match nothing are left out (filled in
    # finish(), once the tree or the images are known).
    r.ext_mnt.extend((m.key, m.val) for m in maps)


def _inherit_fd(r: Request, items: list) -> None:
    for item in items:
        try:
            local = native.copy_fd(r.peer, item.fd)
        except OSError as exc:
            raise OptionError(f"criu_opts.inherit_fd fd[{item.fd}]:{item.key}: the client has no such fd "
                              f"({exc.strerror})") from None
        r.owned.append(local)
        os.set_inheritable(local, False)
        r.opts.inherit_fd.append(f"fd[{local}]:{item.key}")


def _notify_scripts(r: Request, on: bool) -> None:
    r.notify_scripts = on


def _parent_img(r: Request, rel: str) -> None:
    r.opts.prev_images_dir = rel


def _rst_sibling(r: Request, on: bool) -> None:
    r.opts.restore_sibling = on


def _network_lock(r: Request, method: int) -> None:
    if method == rpc_pb2.SKIP:
        raise OptionError("criu_opts.network_lock SKIP: refcr always locks the network of a tree "
                          "with its own namespace")
    # IPTABLES and NFTABLES: refcr's lock (an nftables table, net/netlock.py)


def _accepted(r: Request, value: object) -> None:
    """A field whose meaning refcr has anyway, or that changes nothing that
    is dumped or restored (see ACCEPTED)."""


def _pid(r: Request, pid: int) -> None:
    if pid <= 0:
        raise OptionError(f"criu_opts.pid {pid}: not a process id")
    r.opts.pid = pid


CG_MODES = {rpc_pb2.CG_NONE: "none", rpc_pb2.PROPS: "props", rpc_pb2.SOFT: "soft", rpc_pb2.DEFAULT: "soft",
            rpc_pb2.FULL: "full", rpc_pb2.STRICT: "strict"}


def _cg_mode(r: Request, mode: int) -> None:
    if mode == rpc_pb2.IGNORE:
        r.opts.manage_cgroups = None
    elif mode in CG_MODES:
        r.opts.manage_cgroups = CG_MODES[mode]
    else:
        raise OptionError(f"criu_opts.manage_cgroups_mode {mode}: not one of CRIU's modes")


def _manage_cgroups(r: Request, on: bool) -> None:
    r.opts.manage_cgroups = r.opts.manage_cgroups or ("soft" if on else None)


def _cg_root(r: Request, roots: list) -> None:
    for c in roots:
        if not c.path.startswith("/") or "\0" in c.path:
            raise OptionError(f"criu_opts.cg_root {c.ctrl}:{c.path}: not an absolute cgroup path")
        r.opts.cgroup_roots[c.ctrl] = c.path


def _empty_ns(r: Request, mask: int) -> None:
    """The runtime makes the namespace's contents itself (runc: the network)."""
    if mask & ~CLONE_NEWNET:
        raise OptionError(f"criu_opts.empty_ns {mask:#x}: only CLONE_NEWNET is supported")
    r.opts.empty_ns = mask


def _config_file(r: Request, path: str) -> None:
    # runc names /etc/criu/runc.conf whether or not it exists; CRIU reads it if it does
    if os.path.exists(path):
        raise OptionError(f"criu_opts.config_file {path}: refcr does not read CRIU configuration files")


def _root(r: Request, path: str) -> None:
    if not os.path.isabs(path) or not os.path.isdir(path):
        raise OptionError(f"criu_opts.root {path!r}: not an absolute path of a directory")
    r.opts.root = path


HANDLERS: dict[str, Callable[[Request, object], None]] = {
    "images_dir_fd": _images_dir_fd,
    "images_dir": _images_dir,
    "pid": _pid,
    "leave_running": _set("leave_running"),
    "leave_stopped": _set("leave_stopped"),
    "ext_unix_sk": _ext_unix_sk,
    "unix_sk_ino": _unix_sk_ino,
    "tcp_established": _set("tcp_established"),
    "tcp_close": _set("tcp_close"),
    "tcp_skip_in_flight": _set("skip_in_flight"),
    "shell_job": _set("shell_job"),
    "file_locks": _set("file_locks"),
    "log_level": _log_level,
    "log_file": _log_file,
    "work_dir_fd": _work_dir_fd,
    "notify_scripts": _notify_scripts,
    "parent_img": _parent_img,
    "track_mem": _set("track_mem"),
    "veths": _veths,
    "ext_mnt": _ext_mnt,
    "external": lambda r, v: r.opts.external.extend(v),
    "inherit_fd": _inherit_fd,
    "rst_sibling": _rst_sibling,
    "ghost_limit": _set("ghost_limit"),
    "network_lock": _network_lock,
    "manage_cgroups": _manage_cgroups,
    "manage_cgroups_mode": _cg_mode,
    "empty_ns": _empty_ns,
    "config_file": _config_file,
    "cg_root": _cg_root,
    "root": _root,
    "orphan_pts_master": _set("orphan_pts_master"),
    "freeze_cgroup": _set("freeze_cgroup"),
}

# Fields honoured by refcr's own behaviour, or harmless to ignore: why each is.
ACCEPTED = {
    "cpu_cap": "refcr makes no CPU-feature checks; the images carry the xstate layout",
    "timeout": "the freeze has no timeout in refcr (a freezer cgroup must freeze within 10 s)",
    "display_stats": "refcr logs its figures at -v3",
    "log_to_stderr": "the log goes to stderr when no log_file is given",
    "pre_dump_mode": "refcr chooses how pages are copied",
    "file_validation_method": "refcr checks a reopened file's type and size",
    "evasive_devices": "device files are reopened by path; a missing one fails the restore",
}
for _name in ACCEPTED:
    HANDLERS.setdefault(_name, _accepted)

# Fields with a meaning refcr does not have: a request that sets them is refused.
REFUSED = {
    "ps": "no page server",
    "auto_dedup": "no --auto-dedup",
    "link_remap": "no --link-remap",
    "force_irmap": "no inotify path map (irmap)",
    "irmap_scan_paths": "no inotify path map (irmap)",
    "exec_cmd": "no --exec-cmd",
    "cgroup_props": "no cgroup properties (membership only)",
    "cgroup_props_file": "no cgroup properties (membership only)",
    "cgroup_dump_controller": "no cgroup properties (membership only)",
    "cgroup_yard": "no cgroup properties (membership only)",
    "auto_ext_mnt": "external mounts must be named (--external mnt[..])",
    "ext_sharing": "no --enable-external-sharing",
    "ext_masters": "no --enable-external-masters",
    "skip_mnt": "no --skip-mnt",
    "enable_fs": "no --enable-fs",
    "join_ns": "no --join-ns (an outside net namespace: --external net[INO])",
    "weak_sysctls": "no --weak-sysctls",
    "lazy_pages": "no lazy pages",
    "status_fd": "no --status-fd",
    "lsm_profile": "no LSM profiles",
    "lsm_mount_context": "no LSM mount context",
    "tls_cacert": "no page server", "tls_cacrl": "no page server", "tls_cert": "no page server",
    "tls_key": "no page server", "tls": "no page server", "tls_no_cn_verify": "no page server",
    "pidfd_store_sk": "no --pidfd-store (pre-dump chains are followed by the image's parent link)",
    "mntns_compat_mode": "no mount namespace compat mode",
    "skip_file_rwx_check": "no --skip-file-rwx-check",
    "unprivileged": "no --unprivileged (refcr runs as root)",
    "allow_uprobes": "no uprobes",
    "ghost_fiemap": "no --ghost-fiemap",
}


def _ext_mnt_keys(r: Request) -> set[str]:
    """What ext_mnt keys can name: the tree's mount points (dump), the
    external keys of the images (restore)."""
    from refcr.ns import mntns
    if r.command == "restore":
        from refcr.images.imagedir import ImageDir
        images = ImageDir(r.opts.images_dir, "r")
        try:
            if not images.exists("mntns"):
                return set()
            return {m.ext_key for m in images.read_single("mntns").mounts if m.ext_key}
        finally:
            images.close()
    try:
        return {m.mountpoint for m in mntns.read_mountinfo(r.opts.pid)}
    except OSError:
        return set()


def _place_log(r: Request) -> None:
    if r.opts.log_file and (r.work_dir or r.opts.images_dir):
        r.opts.log_file = os.path.join(r.work_dir or r.opts.images_dir, r.opts.log_file)
    elif r.opts.log_file:
        r.opts.log_file = None      # no directory to put it in: the server's own log


def _is_default(f, value: object) -> bool:  # noqa: ANN001  (a FieldDescriptor)
    """Set to the value it has when unset (runc spells out many `false`s)."""
    if f.is_repeated:
        return len(value) == 0
    return f.message_type is None and value == f.default_value


# Handled first, so that the log is in place (and gets the reason) when a later field is refused.
LOG_FIELDS = ("images_dir_fd", "images_dir", "work_dir_fd", "log_file", "log_level")


def translate(msg: rpc_pb2.criu_opts, peer: int, command: str,
              log_ready: Callable[[Request], None] = lambda r: None) -> Request:
    """Options for one request; OptionError names the first field refused.
    log_ready is called once the log fields are known (the server opens the
    request's log file there)."""
    r = Request(msg, peer, command, Options(command=command, verbosity=LOG_WARN, restore_detached=True))
    try:
        fields = sorted(msg.ListFields(), key=lambda fv: fv[0].name not in LOG_FIELDS)
        logged = False
        for f, value in fields:
            if not logged and f.name not in LOG_FIELDS:
                _place_log(r)
                log_ready(r)
                logged = True
            if _is_default(f, value):
                continue
            handler = HANDLERS.get(f.name)
            if handler is None:
                why = REFUSED.get(f.name, "not supported")
                raise OptionError(f"criu_opts.{f.name}: refused by refcr ({why})")
            handler(r, value)
        if not logged:
            _place_log(r)
            log_ready(r)
        unknown = sorted({f.field_number for f in unknown_fields.UnknownFieldSet(msg)})
        if unknown:
            raise OptionError(f"criu_opts field {unknown[0]} is not known to refcr")
        if not r.opts.images_dir and command != "check":
            raise OptionError("criu_opts: no image directory (images_dir_fd or images_dir)")
        if command in ("dump", "pre-dump") and not r.opts.pid:
            raise OptionError("criu_opts.pid: unset, which asks for a dump of the client itself; "
                              "refcr does not dump its own client")
        if r.ext_mnt:
            r.opts.external.extend(f"mnt[{k}]:{v}" for k, v in r.ext_mnt if k in _ext_mnt_keys(r))
    except BaseException:
        r.close()
        raise
    return r
