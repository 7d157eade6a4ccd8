"""The run's options: the only mutable state shared across the pipeline,
and how the command line presents them next to CRIU's.

`Options` is what one run chose.  The rest is for `refcr dump|pre-dump|
restore --help`: the option groups and the option names are those of
CRIU's manual (criu(8), Documentation/criu.txt: "Common options", then one
section per command); options refcr has and CRIU does not are marked
"(refcr)" in their help.  Each option's help is one line: the formatter is
wide enough that argparse never wraps an option's line (the usage line may
still wrap).

A CRIU option refcr does not implement is accepted by the parser only to be
refused: one line naming it and why (``refcr dump: --page-server is a CRIU
option refcr does not support: ...``), exit 1, before anything is touched.
The refused options are not in the option list but named in the epilog.
"""
from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from refcr.errors import OptionError
from refcr.log import LOG_WARN


@dataclass
class Options:
    """Everything the command line (or the test suite) chose for one run."""

    command: str = ""
    images_dir: str = ""
    pid: int = 0
    log_file: str | None = None
    verbosity: int = LOG_WARN
    leave_running: bool = False
    leave_stopped: bool = False
    shell_job: bool = False
    restore_detached: bool = False
    pidfile: str | None = None
    file_locks: bool = False                 # -l: dump and restore flock/POSIX locks
    tcp_established: bool = False            # --tcp-established: TCP connections via TCP_REPAIR
    tcp_close: bool = False                  # --tcp-close: connected TCP sockets come back closed (net/inet.py)
    skip_in_flight: bool = False             # --skip-in-flight: connections not yet accepted are dropped
    ext_unix_sk: list[str] = field(default_factory=list)   # --ext-unix-sk [ID[:PATH]], "" for the bare flag
    external: list[str] = field(default_factory=list)      # --external RES (unix[INO], file[...], mnt[...], ...)
    inherit_fd: list[str] = field(default_factory=list)    # --inherit-fd fd[N]:RES
    ghost_limit: int = 1 << 20               # --ghost-limit: largest deleted file whose contents are dumped
    ghost_fiemap: bool = True                # --[no-]ghost-fiemap: copy only the data of deleted files, not holes
    link_remap: bool = False                 # --link-remap: keep deleted files linked elsewhere by a hard link
    file_validation: str | None = None       # --file-validation filesize: a reopened file's size must not change
    tmpfs_limit: int = 256 << 20             # --tmpfs-limit: bytes of files of one dumped tmpfs (ns/mntns.py)
    libdir: str | None = None                # -L/--libdir: plugin directory
    action_scripts: list[str] = field(default_factory=list)  # --action-script FILE (refcr/actions.py)
    track_mem: bool = False                  # --track-mem: arm dirty-page tracking for a next dump (refcr/mm/track.py)
    prev_images_dir: str | None = None       # --prev-images-dir: the parent image, relative to images_dir
    track_mem_method: str = "auto"           # --track-mem-method: auto, uffd (uffd-wp + PAGEMAP_SCAN), hash
    manage_cgroups: str | None = None        # --manage-cgroups MODE: none, props, soft, full, strict (kernel/cgroup.py)
    cgroup_roots: dict[str, str] = field(default_factory=dict)  # --cgroup-root, cg_root: controllers ("" = all) -> root
    root: str | None = None                  # RPC root: restore binds the mount namespace's root from here
    empty_ns: int = 0                        # RPC empty_ns: CLONE_NEW* bits of namespaces dumped without contents
    restore_sibling: bool = False            # RPC rst_sibling: the restored root becomes a child of refcr's parent
    orphan_pts_master: bool = False          # --orphan-pts-master: a pty slave whose master is outside is dumped
    freeze_cgroup: str | None = None         # --freeze-cgroup PATH (RPC freeze_cgroup): kernel/freezer.py
    # Called at every action-script moment (action, root pid) after the scripts:
    # the RPC server's NOTIFY round trip to its client (refcr/rpc/server.py).
    notify: Callable[[str, int | None], None] | None = None
    # Hands a descriptor to the RPC client in a NOTIFY (action, fd): the new
    # master of an orphan pty ("orphan-pts-master"); None on the command line.
    hand_fd: Callable[[str, int], None] | None = None
    extra: dict[str, object] = field(default_factory=dict)


# ---------------------------------------------- CRIU's option groups, refused options ---
# CRIU's option groups, by argparse dest; "help" is argparse's own -h.
COMMON = ["help", "images_dir", "log_file", "verbosity", "pidfile", "prev_images_dir", "libdir",
          "action_scripts"]
GROUPS: dict[str, list[tuple[str, list[str]]]] = {
    "dump": [("common options", COMMON),
             ("dump options", ["pid", "leave_running", "leave_stopped", "external", "ext_unix_sk",
                               "tcp_established", "tcp_close", "skip_in_flight", "file_locks", "ghost_limit",
                               "shell_job", "track_mem",
                               "track_mem_method", "tmpfs_limit", "link_remap", "ghost_fiemap", "file_validation",
                               "skip_file_rwx_check", "orphan_pts_master", "manage_cgroups",
                               "freeze_cgroup"])],
    "pre-dump": [("common options", COMMON),
                 ("pre-dump options", ["pid", "track_mem_method", "external", "ext_unix_sk", "tcp_established",
                                       "tcp_close", "freeze_cgroup",
                                       "file_locks", "shell_job"])],
    "restore": [("common options", COMMON),
                ("restore options", ["restore_detached", "leave_stopped", "inherit_fd", "external", "ext_unix_sk",
                                     "tcp_established", "tcp_close", "file_locks", "shell_job", "link_remap",
                                     "file_validation", "skip_file_rwx_check", "manage_cgroups",
                                     "cgroup_root"])],
}
REFCR_ONLY = {"tmpfs_limit", "track_mem_method"}     # not in CRIU
METAVARS = {"images_dir": "DIR", "log_file": "FILE", "pidfile": "FILE", "libdir": "DIR"}

# CRIU options refcr refuses: (spellings, takes a value, why).
_COMMON_REFUSED = [
    (("--config",), True, "refcr reads no configuration files"),
    (("--no-default-config",), False, "refcr reads no configuration files"),
    (("--display-stats",), False, "refcr keeps no statistics files (see -v3 for timings)"),
    (("-W", "--work-dir"), True, "logs go where -o says (relative: inside -D)"),
    (("--close",), True, "not implemented"),
]
_DUMP_REFUSED = [
    (("--cgroup-props",), True, "cgroups are not dumped"),
    (("--cgroup-props-file",), True, "cgroups are not dumped"),
    (("--cgroup-dump-controller",), True, "cgroups are not dumped"),
    (("--cgroup-yard",), True, "cgroups are not dumped"),
    (("--page-server",), False, "there is no page server: pages are written into -D"),
    (("--auto-dedup",), False, "not implemented"),
    (("--cpu-cap",), True, "images are restored on the machine they were made on"),
    (("--lazy-pages",), False, "there is no lazy restore"),
    (("--network-lock",), True, "the network is always locked with nftables"),
]
REFUSED: dict[str, list[tuple[tuple[str, ...], bool, str]]] = {
    "dump": _COMMON_REFUSED + [(("--pidfile",), True, "a dump has no process to name")] + _DUMP_REFUSED,
    "pre-dump": _COMMON_REFUSED + [(("--pidfile",), True, "a pre-dump has no process to name"),
                                   (("--pre-dump-mode",), True, "refcr's pre-dump reads with process_vm_readv")]
    + _DUMP_REFUSED,
    "restore": _COMMON_REFUSED + [
        (("-S", "--restore-sibling"), False, "the root is refcr's child (or, with -d, re-parented)"),
        (("--log-pid",), False, "there is one log"),
        (("-r", "--root"), True, "the mount tree is rebuilt from the images, not from a new root"),
        (("--cgroup-yard",), True, "cgroups are not restored"),
        (("--veth-pair",), True, "use --external veth[IN]:OUT[@BRIDGE]"),
        (("--lsm-profile",), True, "LSM profiles are not restored"),
        (("--auto-dedup",), False, "not implemented"),
        (("--cpu-cap",), True, "images are restored on the machine they were made on"),
        (("--weak-sysctls",), False, "every dumped sysctl must be restorable"),
        (("--lazy-pages",), False, "there is no lazy restore"),
    ],
}


class _Refused(argparse.Action):
    """A CRIU option refcr does not implement: one line naming it."""

    def __init__(self, option_strings: Sequence[str], dest: str, why: str = "", **kw: Any) -> None:
        self.why = why
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        raise OptionError(f"{parser.prog}: {option_string} is a CRIU option refcr does not support: {self.why}")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """One line per option: wide, with the help column after the longest option."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=48, width=200)


def arrange_help(p: argparse.ArgumentParser, command: str) -> None:
    """Regroup p's options as CRIU's manual does, add the refused ones."""
    p.formatter_class = _Formatter
    by_dest = {a.dest: a for a in p._actions}
    placed: set[str] = set()
    for title, dests in GROUPS[command]:
        group = p.add_argument_group(title)
        for dest in dests:
            action = by_dest.get(dest)
            if action is None or dest in placed:
                continue
            for old in p._action_groups:
                if action in old._group_actions and old is not group:
                    old._group_actions.remove(action)
            group._group_actions.append(action)
            if dest in METAVARS and action.nargs is None:
                action.metavar = METAVARS[dest]
            if dest in REFCR_ONLY and action.help and not action.help.endswith("(refcr)"):
                action.help += " (refcr)"
            placed.add(dest)
    left = [a.dest for a in p._actions if a.dest not in placed and a.help != argparse.SUPPRESS]
    if left:
        raise AssertionError(f"refcr {command}: options in no CRIU group: {left}")
    names = []
    for spellings, takes_value, why in REFUSED[command]:
        p.add_argument(*spellings, action=_Refused, why=why, nargs="?" if takes_value else 0,
                       dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        names.append("/".join(spellings))
    p.epilog = textwrap.fill("CRIU options refcr refuses (each one is an error naming it, before anything is "
                             "done): " + ", ".join(names) + ".", 110, break_on_hyphens=False)
