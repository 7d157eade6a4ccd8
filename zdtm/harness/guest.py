"""Scenarios that need a device the host lacks run inside a QEMU guest.

A scenario whose .desc says ``'device': '/dev/rtc'`` runs on the host when the
host has that device; otherwise the whole start -> dump -> restore -> verify
cycle runs inside one short-lived guest, and the item is reported like any
other.  The guest:

* QEMU in software emulation (``-accel tcg -cpu max -m 1024``), no disk, no
  network card, serial console into ``work/FLAVOR/NAME.console.log``;
* a stock Debian kernel (``linux-image-6.12.*-amd64-unsigned``, fetched once
  with ``apt-get download``; its config must have RTC_DRV_CMOS=y and
  RTC_INTF_DEV=y), booted through its PVH entry from the uncompressed vmlinux
  (the zstd frame inside vmlinuz);
* an initramfs made here: a static busybox, the 9p (and nf_tables) modules
  of that kernel and ``zdtm/guest/init``, which mounts the host's ``/``
  read-only over virtio-9p, the item's work dir read-write over its own
  path, brings ``lo`` up, links /dev/rtc to rtc0 and switch_root()s into the
  host's tree, where ``zdtm/guest/item`` runs ``python -m zdtm.harness.guest
  inside WORKDIR`` (this module) and powers off.

Also ``--zdtm-guest`` runs any item there (the guest's kernel is 6.12:
a way to try the engine on an older kernel).

The in-guest side runs the ordinary ScenarioRun in ``WORKDIR/run`` and
writes ``WORKDIR/verdict.json``; the host side turns it into the item's
outcome.  Downloads and the built kernel/initramfs are cached, keyed by the
package version, in ``$REFCR_GUEST_CACHE`` (default /var/cache/refcr-guest).

    python -m zdtm.harness.guest prepare    fetch and build the guest if a scenario needs it (dev.sh setup)
"""
from __future__ import annotations

import dataclasses
import io
import json
import lzma
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .desc import DescError, load
from .flavors import FLAVORS
from .locks import locked
from .runner import RunConfig, ScenarioRun, StepFailed, Timeouts

QEMU = "qemu-system-x86_64"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
INIT = Path(__file__).resolve().parent.parent / "guest" / "init"
KERNEL_PKG = re.compile(r"^linux-image-6\.12\.(\d+)\+deb12-amd64-unsigned$")
KERNEL_CONFIG_NEEDS = ("CONFIG_RTC_DRV_CMOS=y", "CONFIG_RTC_INTF_DEV=y", "CONFIG_PVH=y", "CONFIG_VIRTIO_PCI=y")
# Loaded in the guest, in this order, each after what its modinfo says it
# depends on: the 9p filesystem over virtio, nf_tables (refcr dumps a net
# namespace's ruleset with nft), unix_diag (refcr's unix socket dump) and
# veth (scenarios make pairs).  crc32c_generic is what libcrc32c (a
# dependency of nf_tables) asks the crypto API for; there is no modprobe in
# the guest to load it on demand.
MODULES = ("9pnet_virtio", "9p", "crc32c_generic", "nf_tables", "unix_diag", "veth")
# The module files taken from the package: MODULES and their dependencies.
MODULE_FILES = frozenset(f"{m}.ko.xz" for m in (
    "netfs", "9pnet", "9pnet_virtio", "9p", "crc32c_generic", "libcrc32c", "nfnetlink", "nf_tables",
    "unix_diag", "veth"))
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BOOT_TIMEOUT = 120.0  # boot + power-off, on top of the item's own timeouts
CONFIG_FILE = "guest.json"
# WORKDIR/mem is a tmpfs in the guest (guest/init): the item runs in mem/run
# (unix sockets, fifos and shared mappings behave as on a local file
# system, which 9p is not); mem/run is copied to WORKDIR/run at the end.
MEM_DIR = "mem"
# The harness's environment variables that go into the guest (not all: guest.json is a file).
GUEST_ENV = re.compile(r"^(PATH|PYTHONPATH|HOME|LANG|LC_\w+|TERM|TZ|REFCR_\w+|ZDTM_\w+|CRIU_\w+)$")
VERDICT_FILE = "verdict.json"
STATUS_FILE = "guest-status"


class GuestError(Exception):
    """The guest cannot be prepared or run; the message says why."""


def cache_dir() -> Path:
    return Path(os.environ.get("REFCR_GUEST_CACHE", "/var/cache/refcr-guest"))


def unavailable() -> str | None:
    """Why no guest can run here, or None."""
    for tool in (QEMU, "apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            return f"{tool} not found (dev.sh setup installs qemu-system-x86)"
    if not BUSYBOX.is_file():
        return f"{BUSYBOX} not found (Debian package busybox-static)"
    if os.geteuid() != 0:
        return "the guest's 9p export of / needs root"
    return None


def missing_devices(devices: tuple[str, ...]) -> list[str]:
    return [d for d in devices if not os.path.exists(d)]


# ---- building the guest --------------------------------------------------------

@dataclass(frozen=True)
class GuestImage:
    """A prepared guest: kernel and initramfs, both in the cache."""

    package: str
    vmlinux: Path
    initramfs: Path


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=600, **kw)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GuestError(f"{argv[0]}: {e}") from None


def _apt_update() -> None:
    p = _run(["apt-get", "update", "-q"], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if p.returncode != 0:
        raise GuestError(f"apt-get update failed: {_last_line(p.stderr)}")


def _last_line(data: bytes) -> str:
    lines = [ln for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def _kernel_candidates() -> list[str]:
    p = _run(["apt-cache", "pkgnames", "linux-image-6.12."])
    names = [n for n in p.stdout.decode().split() if KERNEL_PKG.match(n)]
    return sorted(names, key=lambda n: int(KERNEL_PKG.match(n).group(1)))  # type: ignore[union-attr]


def _pkg_version(name: str) -> str:
    p = _run(["apt-cache", "show", "--no-all-versions", name])
    m = re.search(rb"^Version: (\S+)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise GuestError(f"apt-cache show {name}: {_last_line(p.stderr)}")
    return m.group(1).decode()


def choose_kernel() -> tuple[str, str]:
    """(package, version) of the newest Debian 6.12 kernel apt knows."""
    names = _kernel_candidates()
    if not names:
        _apt_update()
        names = _kernel_candidates()
    if not names:
        raise GuestError("apt knows no linux-image-6.12.*+deb12-amd64-unsigned package (bookworm-security)")
    return names[-1], _pkg_version(names[-1])


def _download(name: str, version: str, into: Path) -> Path:
    argv = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", f"{name}={version}"]
    p = _run(argv, cwd=into)
    if p.returncode != 0:  # the list may be older than the archive: once more after an update
        _apt_update()
        p = _run(argv, cwd=into)
    debs = sorted(into.glob("*.deb"))
    if p.returncode != 0 or not debs:
        raise GuestError(f"apt-get download {name}={version} failed: {_last_line(p.stderr)}")
    return debs[0]


def _wanted_member(name: str) -> bool:
    name = name.removeprefix("./")
    if re.fullmatch(r"boot/(vmlinuz|config)-.*", name):
        return True
    parts = name.split("/")  # lib/modules/VERSION/kernel/.../NAME.ko.xz
    return parts[:2] == ["lib", "modules"] and parts[-1] in MODULE_FILES


def _extract(deb: Path) -> dict[str, bytes]:
    """The members of the package this needs, by base name (.xz modules decompressed)."""
    out: dict[str, bytes] = {}
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        assert p.stdout is not None
        with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
            for member in tar:
                if member.isfile() and _wanted_member(member.name):
                    f = tar.extractfile(member)
                    assert f is not None
                    data = f.read()
                    base = member.name.rsplit("/", 1)[1]
                    if base.endswith(".xz"):
                        data, base = lzma.decompress(data), base[:-3]
                    out[base] = data
        err = p.stderr.read() if p.stderr else b""
    if p.returncode != 0:
        raise GuestError(f"dpkg-deb --fsys-tarfile {deb.name}: {_last_line(err)}")
    return out


def _member(files: dict[str, bytes], prefix: str) -> bytes:
    found = [k for k in files if k.startswith(prefix)]
    if len(found) != 1:
        raise GuestError(f"the kernel package has {len(found)} {prefix}* files, expected one")
    return files[found[0]]


def vmlinux_from_vmlinuz(vmlinuz: bytes) -> bytes:
    """The kernel ELF inside a zstd-compressed bzImage (first zstd frame that
    decompresses to an ELF file)."""
    import zstandard

    start = vmlinuz.find(ZSTD_MAGIC)
    while start >= 0:
        try:
            data = zstandard.ZstdDecompressor().decompressobj().decompress(vmlinuz[start:])
        except zstandard.ZstdError:
            data = b""
        if data.startswith(b"\x7fELF"):
            return data
        start = vmlinuz.find(ZSTD_MAGIC, start + 1)
    raise GuestError("no zstd-compressed ELF kernel inside vmlinuz")


def module_depends(ko: bytes) -> list[str]:
    """The depends= list of a module's .modinfo."""
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", ko)
    return [d for d in m.group(1).decode().split(",") if d] if m else []


def module_order(modules: dict[str, bytes], wanted: tuple[str, ...]) -> list[str]:
    """File names of wanted modules and their dependencies, dependencies first."""
    order: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        fname = f"{name.replace('-', '_')}.ko"
        if fname not in modules:
            fname = f"{name}.ko"
        if fname in order:
            return
        if fname not in modules:
            raise GuestError(f"module {name} (needed by {' <- '.join(chain) or 'the guest'}) is not in the package")
        if name in chain:
            raise GuestError(f"module dependency loop: {' -> '.join(chain + (name,))}")
        for dep in module_depends(modules[fname]):
            visit(dep, chain + (name,))
        order.append(fname)

    for name in wanted:
        visit(name, ())
    return order


def cpio_newc(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """An uncompressed cpio (newc) archive of (name, mode, data, rdev) entries."""
    out = io.BytesIO()

    def pad() -> None:
        out.write(b"\0" * (-out.tell() % 4))

    for ino, (name, mode, data, rdev) in enumerate([*entries, ("TRAILER!!!", 0, b"", 0)], start=1):
        raw = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, os.major(rdev), os.minor(rdev), len(raw), 0]
        out.write(b"070701" + b"".join(b"%08x" % f for f in fields) + raw)
        pad()
        out.write(data)
        pad()
    return out.getvalue()


def build_initramfs(modules: dict[str, bytes], order: list[str]) -> bytes:
    d, f = stat.S_IFDIR | 0o755, stat.S_IFREG
    entries = [(n, d, b"", 0) for n in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules")]
    entries += [
        ("dev/console", stat.S_IFCHR | 0o600, b"", os.makedev(5, 1)),
        ("bin/busybox", f | 0o755, BUSYBOX.read_bytes(), 0),
        ("init", f | 0o755, INIT.read_bytes(), 0),
        ("lib/modules/order", f | 0o644, "".join(f"{m}\n" for m in order).encode(), 0),
    ]
    entries += [(f"lib/modules/{m}", f | 0o644, modules[m], 0) for m in order]
    return cpio_newc(entries)


def _check_config(config: bytes) -> None:
    lines = set(config.decode(errors="replace").splitlines())
    missing = [c for c in KERNEL_CONFIG_NEEDS if c not in lines]
    if missing:
        raise GuestError(f"the guest kernel's config lacks {', '.join(missing)}")


def prepare(cache: Path | None = None, log=print) -> GuestImage:  # type: ignore[no-untyped-def]
    """The guest's kernel and initramfs, fetched and built once per package
    version (under a lock: parallel workers wait for the first)."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with locked(cache / ".lock"):
        package, version = choose_kernel()
        key = re.sub(r"[^\w.+-]", "_", f"{package}_{version}")
        d = cache / key
        image = GuestImage(package=key, vmlinux=d / "vmlinux", initramfs=d / "initramfs.cpio")
        stamp = f"{package} {version} {' '.join(sorted(MODULE_FILES))}\n"
        if (d / "ready").exists() and (d / "ready").read_text() == stamp:
            if INIT.stat().st_mtime > image.initramfs.stat().st_mtime or \
                    BUSYBOX.stat().st_mtime > image.initramfs.stat().st_mtime:
                _write_initramfs(d, image)  # zdtm/guest/init changed: repack
            return image
        t0 = time.monotonic()
        log(f"guest: preparing {package} {version} in {d}")
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            files = _extract(_download(package, version, Path(tmp)))
        _check_config(_member(files, "config-"))
        image.vmlinux.write_bytes(vmlinux_from_vmlinuz(_member(files, "vmlinuz-")))
        mods = d / "modules"
        mods.mkdir()
        for name, data in files.items():
            if name.endswith(".ko"):
                (mods / name).write_bytes(data)
        _write_initramfs(d, image)
        (d / "ready").write_text(stamp)
        for old in cache.glob("linux-image-*"):  # earlier versions
            if old != d:
                shutil.rmtree(old, ignore_errors=True)
        log(f"guest: ready in {time.monotonic() - t0:.1f} s")
        return image


def _write_initramfs(d: Path, image: GuestImage) -> None:
    modules = {p.name: p.read_bytes() for p in (d / "modules").glob("*.ko")}
    tmp = image.initramfs.with_suffix(".tmp")
    tmp.write_bytes(build_initramfs(modules, module_order(modules, MODULES)))
    tmp.rename(image.initramfs)


# ---- host side: one item in a guest -------------------------------------------------

def _plain_path(what: str, p: Path) -> str:
    s = str(p)
    if not p.is_absolute() or any(c.isspace() or c in '",:' for c in s):
        raise GuestError(f"{what} {s!r} cannot go on the guest kernel's command line or QEMU's")
    return s


@dataclass
class GuestRun(ScenarioRun):
    """The ScenarioRun of one item, driven inside a guest.

    cfg.workdir (host) holds guest.json, verdict.json, guest-status, mem/
    (a tmpfs in the guest, where the inner run works) and run/ (its copy);
    the console log is kept beside it.
    """

    @property
    def inner_workdir(self) -> Path:
        return self.cfg.workdir / "run"

    @property
    def console_log(self) -> Path:
        return self.cfg.workdir.parent / f"{self.cfg.workdir.name}.console.log"

    def artifacts(self) -> list[Path]:
        inner = ScenarioRun(dataclasses.replace(self.cfg, workdir=self.inner_workdir)).artifacts()
        return [*inner, *[p for p in [self.console_log] if p.is_file()]]

    def run(self) -> None:
        wd = self.cfg.workdir
        with self._step("guest-prepare"):
            try:
                image = prepare(log=lambda _msg: None)
            except GuestError as e:
                raise StepFailed("guest-prepare", str(e)) from None
            if wd.exists():
                shutil.rmtree(wd)
            wd.mkdir(parents=True)
            (wd / MEM_DIR).mkdir()
            self._write_config()
        with self._step("guest"):
            rc = self._boot(image)
        self._take_verdict(rc)

    def _write_config(self) -> None:
        c = self.cfg
        config = {
            "source": str(c.scenario.source), "flavor": c.flavor.name, "no_cr": c.no_cr,
            "env": {k: v for k, v in c.env.items() if GUEST_ENV.match(k)},
            "iterations": c.iterations, "timeouts": dataclasses.asdict(c.timeouts), "refcr": list(c.refcr),
            "verbosity": c.verbosity,
        }
        (self.cfg.workdir / CONFIG_FILE).write_text(json.dumps(config, indent=1))

    def _boot(self, image: GuestImage) -> int:
        c = self.cfg
        try:
            repo = c.scenario.source.resolve().parents[2]
            cmdline = " ".join([
                "console=ttyS0", "panic=-1", "loglevel=4",
                f"refcr_work={_plain_path('work dir', c.workdir.resolve())}",
                f"refcr_repo={_plain_path('repo', repo)}",
                f"refcr_python={_plain_path('python', Path(c.refcr[0]))}",
                "refcr_keep=" + ":".join(_plain_path("path", q) for q in (
                    c.workdir.resolve(), repo, Path(c.refcr[0]).resolve(), Path(sys.base_prefix).resolve())),
            ])
        except GuestError as e:
            raise StepFailed("guest", str(e)) from None
        argv = [
            QEMU, "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "1",
            "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio",
            "-kernel", str(image.vmlinux), "-initrd", str(image.initramfs), "-append", cmdline,
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={c.workdir.resolve()},mount_tag=work,security_model=passthrough,"
                       "multidevs=remap",
        ]
        t = c.timeouts
        limit = BOOT_TIMEOUT + t.start + t.pidfile + (t.dump + t.restore + t.gone) * c.iterations + t.exit
        with open(self.console_log, "wb") as log:
            log.write(f"# {' '.join(argv)}\n".encode())
            log.flush()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            return p.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            raise StepFailed("guest", f"the guest did not power off within {limit:g}s "
                             f"(console: {self.console_log})") from None
        finally:  # also on KeyboardInterrupt: no guest outlives its item
            if p.poll() is None:
                procs.kill_tree(p.pid, p.pid)
                p.wait()

    def _take_verdict(self, qemu_rc: int) -> None:
        wd = self.cfg.workdir
        try:
            verdict = json.loads((wd / VERDICT_FILE).read_text())
        except (OSError, ValueError) as e:
            tail = self.console_log.read_text(errors="replace").splitlines()[-15:]
            raise StepFailed("guest", f"no verdict from the guest (qemu status {qemu_rc}; {e})", tail) from None
        self.steps_done += [f"guest:{s}" for s in verdict.get("steps_done", [])]
        self.crfail_confirmed = bool(verdict.get("crfail_confirmed"))
        if not verdict.get("ok"):
            raise StepFailed(f"guest:{verdict.get('step')}", str(verdict.get("message")),
                             [str(x) for x in verdict.get("details", [])])


# ---- guest side ----------------------------------------------------------------

def inside(workdir: Path) -> int:
    """Run the item described by WORKDIR/guest.json; write WORKDIR/verdict.json."""
    config = json.loads((workdir / CONFIG_FILE).read_text())
    scenario = load(Path(config["source"]))
    procs.become_subreaper()
    env = dict(config["env"])
    mem = workdir / MEM_DIR
    if not os.access("/tmp", os.W_OK):  # the host's /tmp, kept read-only (guest/init)
        tmp = mem / "tmp"
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = os.environ["TMPDIR"] = str(tmp)
    run = ScenarioRun(RunConfig(
        scenario=scenario, flavor=FLAVORS[config["flavor"]], workdir=mem / "run", env=env,
        no_cr=config["no_cr"], iterations=config["iterations"], timeouts=Timeouts(**config["timeouts"]),
        refcr=tuple(config["refcr"]), verbosity=config["verbosity"],
    ))
    verdict: dict[str, object] = {"ok": False}
    try:
        missing = missing_devices(scenario.devices)
        if missing:
            raise StepFailed("guest-devices", f"the guest has no {' '.join(missing)} either")
        run.run()
        verdict["ok"] = True
    except StepFailed as e:
        verdict.update(step=e.step, message=e.message, details=e.details)
    except Exception as e:  # noqa: BLE001 - reported to the host as the item's failure
        verdict.update(step=run.step, message=f"{type(e).__name__}: {e}", details=traceback.format_exc().splitlines())
    verdict.update(steps_done=run.steps_done, crfail_confirmed=run.crfail_confirmed)
    _show_on_console(run)
    _copy_back(run.cfg.workdir, workdir / "run")
    (workdir / VERDICT_FILE).write_text(json.dumps(verdict, indent=1))
    print(f"verdict: {'PASS' if verdict['ok'] else 'FAIL'} {verdict.get('step', '')} {verdict.get('message', '')}",
          flush=True)
    return 0


def _copy_back(src: Path, dst: Path) -> None:
    """The inner work dir (tmpfs) into the shared one, where the host sees it:
    directories, regular files and symlinks (sockets and fifos stay)."""
    def special(d: str, names: list[str]) -> list[str]:
        return [n for n in names if not (os.path.islink(os.path.join(d, n)) or os.path.isdir(os.path.join(d, n))
                                         or os.path.isfile(os.path.join(d, n)))]

    if not src.is_dir():
        return
    try:
        shutil.copytree(src, dst, symlinks=True, ignore=special, dirs_exist_ok=True)
    except (OSError, shutil.Error) as e:
        print(f"guest: parts of {src} not copied back: {e}", flush=True)


def _show_on_console(run: ScenarioRun) -> None:
    """The scenario's outfile and what refcr logged about its plugins, on the
    guest's console (kept in the console log when the work dir is removed)."""
    if run.outfile.exists():
        print(f"---- {run.outfile.name} ----\n{run.outfile.read_text(errors='replace')}----", flush=True)
    for plugin in run.cfg.scenario.plugins:
        for log in sorted(run.cfg.workdir.glob("dump*.log")) + sorted(run.cfg.workdir.glob("restore*.log")):
            lines = [ln for ln in log.read_text(errors="replace").splitlines() if plugin in ln]
            if lines:
                print(f"---- {log.name}: {plugin} ----\n" + "\n".join(lines), flush=True)


def guest_scenarios(static: Path) -> list[str]:
    """Scenarios of static/ that need a device this host lacks."""
    out = []
    for source in sorted(static.glob("*.c")):
        try:
            if missing_devices(load(source).devices):
                out.append(source.stem)
        except DescError:
            continue  # the suite's collection reports it
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["inside"] and len(argv) == 2:
        return inside(Path(argv[1]))
    if argv == ["prepare"]:
        needed = guest_scenarios(Path(__file__).resolve().parent.parent / "static")
        if not needed:
            print("guest: not needed (the host has every device the scenarios need)")
            return 0
        print(f"guest: needed by {' '.join(needed)}")
        why = unavailable()
        if why:
            print(f"guest: cannot be prepared: {why}", file=sys.stderr)
            return 1
        try:
            image = prepare()
        except GuestError as e:
            print(f"guest: {e}", file=sys.stderr)
            return 1
        print(f"guest: {image.package}: {image.vmlinux}, {image.initramfs}")
        return 0
    print("usage: python -m zdtm.harness.guest {prepare | inside WORKDIR}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
