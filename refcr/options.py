"""The run's options: the only mutable state shared across the pipeline."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

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
    ext_unix_sk: list[str] = field(default_factory=list)   # --ext-unix-sk [ID[:PATH]], "" for the bare flag
    external: list[str] = field(default_factory=list)      # --external RES (unix[INO], file[...], mnt[...], ...)
    inherit_fd: list[str] = field(default_factory=list)    # --inherit-fd fd[N]:RES
    ghost_limit: int = 1 << 20               # --ghost-limit: largest deleted file whose contents are dumped
    tmpfs_limit: int = 256 << 20             # --tmpfs-limit: bytes of files of one dumped tmpfs (ns/mntns.py)
    libdir: str | None = None                # -L/--libdir: plugin directory
    action_scripts: list[str] = field(default_factory=list)  # --action-script FILE (refcr/actions.py)
    track_mem: bool = False                  # --track-mem: arm dirty-page tracking for a next dump (refcr/mm/track.py)
    prev_images_dir: str | None = None       # --prev-images-dir: the parent image, relative to images_dir
    track_mem_method: str = "auto"           # --track-mem-method: auto, uffd (uffd-wp + PAGEMAP_SCAN), hash
    manage_cgroups: str | None = None        # RPC manage_cgroups: "soft" = keep the cgroups (kernel/cgroup.py)
    cgroup_roots: dict[str, str] = field(default_factory=dict)  # RPC cg_root: controllers ("" = all) -> new root
    root: str | None = None                  # RPC root: restore binds the mount namespace's root from here
    empty_ns: int = 0                        # RPC empty_ns: CLONE_NEW* bits of namespaces dumped without contents
    restore_sibling: bool = False            # RPC rst_sibling: the restored root becomes a child of refcr's parent
    # Called at every action-script moment (action, root pid) after the scripts:
    # the RPC server's NOTIFY round trip to its client (refcr/rpc/server.py).
    notify: Callable[[str, int | None], None] | None = None
    extra: dict[str, object] = field(default_factory=dict)
