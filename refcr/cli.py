"""The `refcr` command line.  Option spellings follow CRIU's.

Every failure refcr expects is a RefcrError and is printed as one line
(``refcr: error: ...``) with a non-zero exit; anything else is a bug and is
reported the same way, with the traceback only in the log.

Start-up is part of every command's cost: this module imports argparse and
errors only; logging, the options (dataclasses) and each command's pipeline
are imported when the command runs, and `refcr --version` answers before
any parser is built.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys

from refcr import __version__
from refcr.errors import OptionError, RefcrError

TYPE_CHECKING = False       # not typing's: importing typing is a few ms of every start
if TYPE_CHECKING:
    from typing import Callable, Sequence

    from refcr.options import Options


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as RefcrError (one line, exit 1)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise OptionError(f"{self.prog}: {message}")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-D", "--images-dir", required=True, help="image directory")
    p.add_argument("-o", "--log-file", help="log file (relative paths are inside the image directory)")
    p.add_argument("-v", dest="verbosity", nargs="?", const=4, default=2, type=int, choices=range(5),
                   metavar="0..4", help="log level: 1 errors, 2 warnings (default), 3 info, 4 debug")
    p.add_argument("--shell-job", "-j", action="store_true",
                   help="the process is a job of the calling shell (shares its session and terminal)")
    p.add_argument("-l", "--file-locks", action="store_true", help="dump/restore file locks (flock, POSIX)")
    p.add_argument("--tcp-established", action="store_true",
                   help="dump/restore established TCP connections (TCP_REPAIR)")
    p.add_argument("--tcp-close", action="store_true",
                   help="connected TCP sockets are dumped without their connection and restored closed")
    p.add_argument("--ext-unix-sk", action="append", nargs="?", const="", default=[], metavar="ID[:PATH]",
                   help="unix sockets connected outside the tree: allow them (bare), or name one by id")
    p.add_argument("--external", action="append", default=[], metavar="RES",
                   help="an external resource: unix[INO], file[...], mnt[...]:KEY, ...")
    p.add_argument("-L", "--libdir", help="plugin directory")
    p.add_argument("--action-script", dest="action_scripts", action="append", default=[], metavar="FILE",
                   help="run FILE at each stage (CRTOOLS_SCRIPT_ACTION=...); repeatable")


class _Refused(argparse.Action):
    """A CRIU option refcr does not implement: refused in one line naming it."""

    def __init__(self, option_strings, dest, why: str = "", **kw) -> None:
        self.why = why
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        raise OptionError(f"{option_string}: not supported by refcr ({self.why})")


# CRIU's file options refcr refuses, and why (README "Options for files").
REFUSED_FILE_OPTIONS = {
    "--evasive-devices": ("use any path for missing devices: refcr reopens a device by its path only", 0),
    "--force-irmap": ("inotify watches are found by file handle, refcr has no path map to force", 0),
    "--irmap-scan-path": ("inotify watches are found by file handle, refcr has no path map", 1),
}
# On restore only: the new master goes to an RPC client (dump accepts the option).
ORPHAN_PTS_RESTORE = ("the new master of an orphan pty is handed to an RPC client (refcr swrk, refcr "
                      "service); a command-line restore has none", 0)


def _file_arguments(p: argparse.ArgumentParser, dump: bool) -> None:
    """CRIU's options for files: their meaning in refcr, or a refusal."""
    p.add_argument("--link-remap", action="store_true",
                   help="keep a deleted file still linked elsewhere by a temporary hard link")
    if dump:
        p.add_argument("--ghost-fiemap", action=argparse.BooleanOptionalAction, default=True,
                       help="copy only the data of deleted files, not their holes (default)")
    p.add_argument("--file-validation", choices=("filesize", "buildid"), metavar="filesize",
                   help="filesize: a file reopened at restore must have its dumped size")
    p.add_argument("--skip-file-rwx-check", action="store_true",
                   help="accepted: refcr does not compare permission bits at restore")
    refused = dict(REFUSED_FILE_OPTIONS)
    if dump:
        p.add_argument("--orphan-pts-master", action="store_true",
                       help="dump a pty slave whose master is outside the tree (a container's console)")
    else:
        refused["--orphan-pts-master"] = ORPHAN_PTS_RESTORE
    for name, (why, nargs) in refused.items():
        p.add_argument(name, action=_Refused, why=why, nargs=nargs,
                       help=argparse.SUPPRESS)


def _size(text: str) -> int:
    """A size with an optional K/M/G suffix."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower()
    try:
        return int(t[:-1]) * units[t[-1]] if t and t[-1] in units else int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


def _track_arguments(p: argparse.ArgumentParser, dump: bool) -> None:
    """Incremental dumps (refcr/mm/track.py)."""
    if dump:
        p.add_argument("--track-mem", action="store_true",
                       help="track written pages for a next dump (--prev-images-dir) of this one")
    p.add_argument("--prev-images-dir", metavar="REL",
                   help="parent image (relative to -D, e.g. ../pre1): store only pages changed since it")
    p.add_argument("--track-mem-method", choices=("auto", "uffd", "hash"), default="auto",
                   help="how changed pages are found: uffd-wp + PAGEMAP_SCAN, or page digests (default: auto)")


def _freezer_argument(p: argparse.ArgumentParser) -> None:
    """--freeze-cgroup (refcr/kernel/freezer.py), for dump and pre-dump."""
    p.add_argument("--freeze-cgroup", metavar="PATH",
                   help="freeze the tree through this freezer cgroup (v1 or v2), then seize it")


def _cgroup_arguments(p: argparse.ArgumentParser, dump: bool) -> None:
    """CRIU's cgroup options (refcr/kernel/cgroup.py)."""
    p.add_argument("--manage-cgroups", nargs="?", const="soft", metavar="MODE",
                   help="dump (restore) the tree's cgroups and their properties; MODE none, props, soft "
                        "(default), full, strict, ignore")
    if dump:
        _freezer_argument(p)
    if not dump:
        p.add_argument("--cgroup-root", action="append", default=[], metavar="[CTRL:]PATH",
                       help="restore into PATH instead of the dumped cgroup (for the controller CTRL, or all)")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with *only* the sub-parser of that one
    command (what a run needs: the others' arguments are not built)."""
    parser = _Parser(prog="refcr", description="checkpoint/restore of Linux processes")
    parser.add_argument("-V", "--version", action="version", version=f"refcr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    if only is None:
        _pipeline_parsers(sub)
        _tool_parsers(sub)
        _rpc_parsers(sub)
    elif only in ("dump", "pre-dump", "restore"):
        _pipeline_parsers(sub, only)
    elif only in ("swrk", "service"):
        _rpc_parsers(sub)
    else:
        _tool_parsers(sub)
    return parser


def _pipeline_parsers(sub, only: str | None = None) -> None:  # noqa: ANN001  (the subparsers action)
    from refcr.options import arrange_help
    made = []
    if only in (None, "dump"):
        made.append(("dump", _dump_parser(sub)))
    if only in (None, "pre-dump"):
        pd = sub.add_parser("pre-dump", help="write the memory of a running process and start tracking its changes")
        pd.add_argument("-t", "--tree", dest="pid", type=int, required=True, help="pid of the process tree")
        _common(pd)
        _track_arguments(pd, dump=False)
        _freezer_argument(pd)
        made.append(("pre-dump", pd))
    if only in (None, "restore"):
        made.append(("restore", _restore_parser(sub)))
    for name, sp in made:
        arrange_help(sp, name)     # CRIU's option groups in --help, CRIU's options refcr refuses


def _dump_parser(sub) -> argparse.ArgumentParser:  # noqa: ANN001
    d = sub.add_parser("dump", help="checkpoint a process into an image directory")
    d.add_argument("-t", "--tree", dest="pid", type=int, required=True, help="pid of the process to dump")
    _common(d)
    mode = d.add_mutually_exclusive_group()
    mode.add_argument("-R", "--leave-running", action="store_true", help="let the process run on after the dump")
    mode.add_argument("-s", "--leave-stopped", action="store_true", help="leave the process stopped after the dump")
    d.add_argument("--skip-in-flight", action="store_true",
                   help="connections waiting in a listener's accept queue are dropped, not refused")
    d.add_argument("--ghost-limit", type=_size, default=1 << 20, metavar="SIZE",
                   help="largest deleted-but-open file whose contents go into the images (default 1M)")
    d.add_argument("--tmpfs-limit", type=_size, default=256 << 20, metavar="SIZE",
                   help="most bytes of files a tmpfs of the tree's mount namespace may hold (default 256M)")

    _track_arguments(d, dump=True)
    _file_arguments(d, dump=True)
    _cgroup_arguments(d, dump=True)
    return d


def _restore_parser(sub) -> argparse.ArgumentParser:  # noqa: ANN001
    r = sub.add_parser("restore", help="restore a process from an image directory")
    _common(r)
    r.add_argument("-d", "--restore-detached", action="store_true",
                   help="exit once restored instead of waiting for the restored process")
    r.add_argument("--pidfile", help="write the restored root's pid to this file")
    r.add_argument("-s", "--leave-stopped", action="store_true", help="leave the restored process stopped")
    r.add_argument("--inherit-fd", action="append", default=[], metavar="fd[N]:RES",
                   help="give the restored tree refcr's fd N where the images have RES")
    _file_arguments(r, dump=False)
    _cgroup_arguments(r, dump=False)
    return r


def _tool_parsers(sub) -> None:  # noqa: ANN001
    from refcr.images.show import add_arguments as show_arguments
    show_arguments(sub.add_parser("show", help="print images as JSON"))

    sub.add_parser("check", help="probe the kernel features refcr needs")

    pc = sub.add_parser("plugin-check", help="run the conformance checks on CRIU-style plugins")
    pc.add_argument("plugin_paths", nargs="+", metavar="PATH.so")
    pc.add_argument("-v", dest="verbosity", nargs="?", const=4, default=1, type=int, choices=range(5),
                    metavar="0..4", help="show the plugins' own log messages up to this level on stderr")
    pc.add_argument("--with", dest="partner", metavar="OTHER.so",
                    help="the plugin to chain it with (default: plugins/trivial)")
    pc.add_argument("--scenario", metavar="PROG.c",
                    help="a zdtm-style program to dump and restore with the plugin")
    pc.add_argument("--junit-xml", metavar="FILE", help="also write the results as JUnit XML")
    sub.add_parser("plugin-cflags", help="print the compiler flags for building a plugin (-I<headers>)")


def _rpc_parsers(sub) -> None:  # noqa: ANN001  (the subparsers action)
    """CRIU's RPC protocol (refcr/rpc): what container runtimes call."""
    sw = sub.add_parser("swrk", help="serve CRIU's RPC protocol on an inherited socket (runc --criu refcr)")
    sw.add_argument("fd", type=int, metavar="FD", help="a unix SOCK_SEQPACKET socket inherited from the client")
    sv = sub.add_parser("service", help="serve CRIU's RPC protocol on a unix socket, a worker per connection")
    sv.add_argument("--address", default="/run/refcr_service.socket", metavar="PATH",
                    help="the socket to listen on (default: %(default)s)")
    sv.add_argument("--pidfile", metavar="FILE", help="write the server's pid here once it listens")
    for p in (sw, sv):
        p.add_argument("-v", dest="verbosity", nargs="?", const=4, default=2, type=int, choices=range(5),
                       metavar="0..4", help="log level of the server itself (each request sets its own)")
        p.add_argument("-o", dest="log_file", metavar="FILE", help="the server's log (default: stderr)")


def to_options(ns: argparse.Namespace) -> Options:
    from refcr.options import Options
    opts = Options(command=ns.command)
    for name in ("images_dir", "pid", "log_file", "verbosity", "leave_running", "leave_stopped",
                 "shell_job", "restore_detached", "pidfile", "file_locks", "tcp_established", "tcp_close",
                 "skip_in_flight",
                 "ext_unix_sk", "external", "inherit_fd", "ghost_limit", "tmpfs_limit", "libdir",
                 "track_mem", "prev_images_dir", "track_mem_method", "link_remap", "ghost_fiemap",
                 "file_validation", "orphan_pts_master", "freeze_cgroup",
                 "action_scripts"):
        if hasattr(ns, name) and getattr(ns, name) is not None:
            setattr(opts, name, getattr(ns, name))
    if opts.file_validation == "buildid":
        raise OptionError("--file-validation buildid: not supported by refcr (only filesize)")
    _cgroup_options(ns, opts)
    if opts.log_file and opts.images_dir and not os.path.isabs(opts.log_file) and opts.log_file != "-":
        opts.log_file = os.path.join(opts.images_dir, opts.log_file)
    return opts


def _cgroup_options(ns: argparse.Namespace, opts: Options) -> None:
    mode = getattr(ns, "manage_cgroups", None)
    if mode is not None and mode != "ignore":
        from refcr.kernel.cgroup import check_mode
        opts.manage_cgroups = check_mode(mode, "--manage-cgroups")
    for item in getattr(ns, "cgroup_root", []) or []:
        ctrl, sep, path = item.rpartition(":") if not item.startswith("/") else ("", "", item)
        if not path.startswith("/") or "\0" in path:
            raise OptionError(f"--cgroup-root {item}: not [CONTROLLER:]ABSOLUTE-PATH")
        opts.cgroup_roots[ctrl] = path


def cmd_dump(opts: Options, ns: argparse.Namespace) -> int:
    from refcr import log as logmod
    from refcr.dump import dump
    from refcr.external import check_external
    from refcr.images.imagedir import ImageDir
    opts.ext_unix_sk += [str(ino) for ino in check_external(opts.external)]
    from refcr.actions import check_scripts
    opts.action_scripts = check_scripts(opts.action_scripts)
    images = ImageDir(opts.images_dir, "w")      # checked before the log file lands in it
    logmod.setup(opts.verbosity, opts.log_file)
    dump(opts, images)
    return 0


def cmd_pre_dump(opts: Options, ns: argparse.Namespace) -> int:
    from refcr import log as logmod
    from refcr.images.imagedir import ImageDir
    from refcr.predump import pre_dump
    images = ImageDir(opts.images_dir, "w")
    logmod.setup(opts.verbosity, opts.log_file)
    pre_dump(opts, images)
    return 0


def check_pidfile(path: str) -> None:
    """Before anything is restored: a pidfile that cannot be written would
    leave the restored tree running with nobody told its pid."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OptionError(f"--pidfile {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OptionError(f"--pidfile {path}: directory {parent} is not writable")
    if os.path.isdir(path):
        raise OptionError(f"--pidfile {path}: is a directory")


def cmd_restore(opts: Options, ns: argparse.Namespace) -> int:
    from refcr import log as logmod
    from refcr.external import check_external
    from refcr.restore import restore, wait_root
    if not os.path.isdir(opts.images_dir):
        raise OptionError(f"image directory {opts.images_dir} does not exist")
    opts.ext_unix_sk += [str(ino) for ino in check_external(opts.external)]
    if opts.pidfile:
        check_pidfile(opts.pidfile)
    from refcr.actions import check_scripts
    opts.action_scripts = check_scripts(opts.action_scripts)
    logmod.setup(opts.verbosity, opts.log_file)
    pid = restore(opts)
    if opts.pidfile:
        try:
            with open(opts.pidfile + ".tmp", "w") as f:
                f.write(f"{pid}\n")
            os.rename(opts.pidfile + ".tmp", opts.pidfile)
        except OSError as exc:        # checked before the restore; still, nothing is left running unknown
            import signal
            os.kill(pid, signal.SIGKILL)
            raise OptionError(f"--pidfile {opts.pidfile}: {exc.strerror}; restored process {pid} killed") from None
    if opts.restore_detached:
        return 0
    return wait_root(pid)


def cmd_swrk(opts: Options, ns: argparse.Namespace) -> int:
    from refcr import log as logmod
    from refcr.rpc.server import swrk
    logmod.setup(opts.verbosity, opts.log_file)
    return swrk(ns.fd)


def cmd_service(opts: Options, ns: argparse.Namespace) -> int:
    from refcr import log as logmod
    from refcr.rpc.server import service
    logmod.setup(opts.verbosity, opts.log_file)
    return service(ns.address, ns.pidfile)


def cmd_show(opts: Options, ns: argparse.Namespace) -> int:
    from refcr.images.show import main_show
    return main_show(ns)


def cmd_check(opts: Options, ns: argparse.Namespace) -> int:
    from refcr.check import main_check
    return main_check(opts)


def cmd_plugin_check(opts: Options, ns: argparse.Namespace) -> int:
    from refcr import log as logmod
    from refcr.plugins.conformance import main_check as plugin_check
    logmod.setup(opts.verbosity, None)
    return plugin_check(ns.plugin_paths, opts.verbosity, partner=ns.partner, scenario=ns.scenario,
                        junit=ns.junit_xml)


def cmd_plugin_cflags(opts: Options, ns: argparse.Namespace) -> int:
    from refcr.plugins.host import include_dir
    print(f"-I{include_dir()}")
    return 0


COMMANDS: dict[str, Callable[[Options, argparse.Namespace], int]] = {
    "dump": cmd_dump, "pre-dump": cmd_pre_dump, "restore": cmd_restore, "show": cmd_show, "check": cmd_check,
    "plugin-check": cmd_plugin_check, "plugin-cflags": cmd_plugin_cflags,
    "swrk": cmd_swrk, "service": cmd_service,
}


# Commands that run one pipeline and exit: no cyclic garbage collection in
# them.  The collector's passes over the imports' and the pipeline's objects
# were a tenth of a cold trivial dump's instructions (callgrind) and grow
# with the objects a dump holds (10,000 mappings or fds); what cycles a
# run leaves are freed with the process.  Only for the command line (argv
# None): an in-process caller (tests, the service's workers) keeps its own.
ONE_SHOT = ("dump", "pre-dump", "restore")


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["--version"], ["-V"]):     # no parser, no imports: what scripts probe first
        print(f"refcr {__version__}")
        return 0
    try:
        only = args[0] if args and args[0] in COMMANDS else None     # build just what this run needs
        if argv is None and only in ONE_SHOT:
            gc.disable()
        ns = build_parser(only).parse_args(args)
        opts = to_options(ns)
        return COMMANDS[ns.command](opts, ns)
    except RefcrError as exc:
        from refcr import log as logmod
        if logmod.logs_to_file():
            logmod.log.error("%s", exc)
        _say(f"refcr: error: {exc}")
        return 1
    except KeyboardInterrupt:
        _say("refcr: interrupted")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # a bug: one line for the user, the traceback in the log
        from refcr.log import log
        log.debug("internal error", exc_info=True)
        _say(f"refcr: internal error: {type(exc).__name__}: {exc}")
        return 2


def _say(line: str) -> None:
    from refcr.log import escape                      # (an error only: not imported for a run's start)
    print(escape(line), file=sys.stderr)              # image strings may hold control characters


if __name__ == "__main__":
    sys.exit(main())
