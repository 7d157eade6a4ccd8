"""refcr's dump and restore against CRIU and the limit, for a set of workloads.

    .venv/bin/python bench/dump_restore.py [--runs N] [--quick] [--real] [--only NAME,...]
                                           [--json FILE] [--no-criu] [--no-service]

CRIU is $REFCR_BENCH_CRIU, else `criu` on PATH (the shared peer:
REFCR_BENCH_CRIU=../shared/peers/criu after ../shared/peers/setup-criu); it
is checked once with `criu check`, and a workload it fails on is noted and
left without its CRIU figures (the other workloads keep theirs).

Every run of a workload starts a fresh process (bench/workload.c, built here
with cc; python-200MiB is bench/pyheap.py), waits until it is set up, and
measures side by side, every side once per run, the order rotating from one
run to the next so that the machine's drifts hit all alike:

- limit: the pages refcr would dump copied with process_vm_readv into a file
  in the same directory as the images (no fsync, like refcr), and copied back
  with process_vm_writev from a mapping of that file into a fresh process
  with one area per run of pages (bench/limit.c): the cost of the bytes alone;
- refcr: the cold command line, `refcr dump` (kills the process) and
  `refcr restore -d` (an interpreter start and its imports each), then the
  restored process checks its own state (every page's contents, threads,
  fds, children) and the run fails if it is wrong;
- refcr service: the same through one `refcr service` started for the whole
  bench, each dump and restore one request of refcr's RPC client
  (refcr/rpc/client.py): no start-up at all;
- criu: the same with CRIU's command line;
- incremental (memory workloads, when `refcr pre-dump` exists): `pre-dump`,
  the process rewrites 1% of its pages, `dump --track-mem --prev-images-dir`,
  restore from that dump, check.

Workloads: synthetic ones (a trivial process, anonymous memory, mappings,
threads, fds, a process tree) and the `real` set (--real): a Python
interpreter with a 200 MiB heap, a 50-thread JVM-like pthread program (8 MiB
stacks, per-thread malloc arenas, threads parked on a condition variable, some
in timed waits), a 100-process tree in a ring of pipes.

Reported per tool and phase: the median wall time over the runs, beside it
the median CPU time (user + system of the tool and what it waited for; for
the service, its own and its reaped workers' from /proc), the image size and
the peak RSS of the cold command (ru_maxrss), plus ratios to CRIU and to the
limit, and the project's targets judged on this run.  Progress goes to
stderr, the table to stdout, and with --json FILE everything (every run's
figures too) to FILE.  Not part of the test run: a benchmark wants a quiet
machine.
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PR_SET_CHILD_SUBREAPER = 36
MIB = 1 << 20


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str          # workload.c's KIND
    count: int         # its N
    memory: bool = False   # pages worth a limit / an incremental dump

    def argv(self, bins: dict[str, str], wdir: str) -> list[str]:
        if self.kind == "python":       # a real interpreter, not a C stand-in
            return [sys.executable, "-I", "-S", os.path.join(HERE, "pyheap.py"), wdir, str(self.count)]
        return [bins["workload"], wdir, self.kind, str(self.count)]


WORKLOADS = [
    Workload("trivial", "trivial", 0),
    Workload("anon-64MiB", "anon", 64, memory=True),
    Workload("anon-256MiB", "anon", 256, memory=True),
    Workload("anon-1GiB", "anon", 1024, memory=True),
    Workload("maps-10000", "maps", 10000, memory=True),
    Workload("threads-100", "threads", 100),
    Workload("fds-10000", "fds", 10000),
    Workload("tree-20", "tree", 20),
]
# programs shaped like real ones (the issue's `real` set)
REAL = [
    Workload("python-200MiB", "python", 200, memory=True),
    Workload("pthreads-50", "jvm", 50),
    Workload("pipes-100", "pipes", 100),
]
QUICK = [
    Workload("trivial", "trivial", 0),
    Workload("anon-64MiB", "anon", 64, memory=True),
    Workload("maps-1000", "maps", 1000, memory=True),
    Workload("threads-10", "threads", 10),
    Workload("fds-1000", "fds", 1000),
    Workload("tree-5", "tree", 5),
]


class BenchError(Exception):
    """A step failed; the message says which and why."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------ processes ---

def build(out: str) -> dict[str, str]:
    """Compile workload.c and limit.c into *out*; name -> binary."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise BenchError("no C compiler (cc) on PATH: apt-get install gcc")
    bins = {}
    for name, extra in (("workload", ["-pthread"]), ("limit", [])):
        bins[name] = os.path.join(out, name)
        res = subprocess.run([cc, "-O2", "-Wall", "-o", bins[name], os.path.join(HERE, f"{name}.c"), *extra],
                             capture_output=True, text=True)
        if res.returncode:
            raise BenchError(f"cannot build bench/{name}.c: {res.stderr.strip()}")
    return bins


def wait_for(path: str, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline or not alive():
            raise BenchError(f"{os.path.basename(path)} did not appear in {timeout:.0f} s")
        time.sleep(0.005)


def start(bins: dict[str, str], w: Workload, wdir: str) -> subprocess.Popen:
    for name in os.listdir(wdir):       # the previous process's ready/changed-G/verdict files
        if name == "ready" or name.startswith(("changed-", "verdict")):
            os.unlink(os.path.join(wdir, name))
    p = subprocess.Popen(w.argv(bins, wdir), cwd=wdir,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(os.path.join(wdir, "ready"), 300, lambda: p.poll() is None)
    except BenchError:
        p.kill()
        p.wait()
        raise BenchError(f"workload {w.name} did not start (exit {p.returncode})") from None
    return p


def verify(pid: int, wdir: str) -> None:
    """Ask the (restored) workload to check itself."""
    verdict = os.path.join(wdir, "verdict")
    if os.path.exists(verdict):
        os.unlink(verdict)
    os.kill(pid, signal.SIGUSR2)
    wait_for(verdict, 120)
    with open(verdict) as f:
        text = f.read().strip()
    if text != "OK":
        raise BenchError(f"restored process: {text}")


def change_pages(pid: int, wdir: str, gen: int) -> None:
    """The workload rewrites 1% of its pages (generation *gen*)."""
    os.kill(pid, signal.SIGUSR1)
    wait_for(os.path.join(wdir, f"changed-{gen}"), 60)


def kill_tree(pid: int) -> None:
    """SIGKILL the (restored) session and reap everything (we are subreaper)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    reap_all(pid)


def reap_all(pid: int) -> None:
    """Wait for every child we have (a dumped tree's processes, killed by the
    dump, come back to us): their pids must be free for the restore."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                if not children() - KEEP:
                    return
                time.sleep(0.01)
        except ChildProcessError:
            return
    raise BenchError(f"processes of session {pid} did not die")


KEEP: set[int] = set()      # children that live for the whole bench (the refcr service)


def children() -> set[int]:
    """This process's children (live and zombie)."""
    out: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            out.update(int(v) for v in f.read().split())
    return out


def dir_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            if not name.endswith(".log"):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


# ---------------------------------------------------------------- tools ---

@dataclass
class Step:
    seconds: float
    cpu: float         # user + system seconds of the tool and the children it waited for
    maxrss: int        # bytes


def run_tool(argv: list[str], log_path: str) -> Step:
    """Run one dump/restore; wall time and the process's peak RSS."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.stderr:
        p.stderr.close()
    if p.returncode:
        lines = err.strip().splitlines()
        if os.path.exists(log_path):
            with open(log_path, errors="replace") as f:
                lines = [ln for ln in f.read().splitlines() if "rror" in ln] or lines
        raise BenchError(f"{' '.join(os.path.basename(a) for a in argv[:4])}: "
                         f"{lines[-1] if lines else f'exit {p.returncode}'}")
    return Step(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)


def criu_binary() -> str | None:
    """CRIU to compare with: $REFCR_BENCH_CRIU, else `criu` on PATH."""
    path = os.environ.get("REFCR_BENCH_CRIU")
    if path:
        return path if os.access(path, os.X_OK) else None
    return shutil.which("criu")


def criu_works(path: str) -> str | None:
    """None if `criu check` passes, else why not (one line)."""
    try:
        res = subprocess.run([path, "check"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if res.returncode:
        lines = (res.stderr or res.stdout).strip().splitlines()
        return f"{path} check: {lines[-1] if lines else f'exit {res.returncode}'}"
    return None


def tool_cmd(tool: str) -> list[str]:
    return [sys.executable, "-m", "refcr"] if tool == "refcr" else [criu_binary() or "criu"]


class Service:
    """A `refcr service` started once for the whole bench (the warm mode):
    every dump and restore is one request through refcr's RPC client
    (refcr/rpc/client.py), so it pays no interpreter start or imports.
    Its CPU is the service's own and its reaped workers' (from
    /proc/PID/stat) over the request: the bench waits until the worker of
    the request has been reaped."""

    def __init__(self, root: str) -> None:
        sys.path.insert(0, REPO)
        from refcr.rpc.client import Client, RpcError
        self.error = RpcError
        self.address = os.path.join(root, "service.sock")
        self.proc = subprocess.Popen([sys.executable, "-m", "refcr", "service", "--address", self.address],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        KEEP.add(self.proc.pid)
        self.client = Client(service=self.address)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client.version()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise BenchError("refcr service did not start") from None
                time.sleep(0.02)
        self.idle()

    def cpu(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def idle(self) -> None:
        """Until the service has no worker left (the last one reaped)."""
        path = f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"
        deadline = time.monotonic() + 30
        while True:
            with open(path) as f:
                if not f.read().strip():
                    return
            if time.monotonic() > deadline:
                raise BenchError("a refcr service worker did not finish")
            time.sleep(0.001)

    def run(self, call: Callable[[], object]) -> Step:
        c0 = self.cpu()
        t0 = time.perf_counter()
        try:
            call()
        except self.error as exc:
            raise BenchError(f"refcr service: {exc.message}") from None
        seconds = time.perf_counter() - t0
        self.idle()
        return Step(seconds, self.cpu() - c0, 0)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def cycle(tool: str, bins: dict[str, str], w: Workload, wdir: str,
          service: Service | None = None) -> dict[str, float]:
    """Start, dump, restore, check, kill: one run of *tool* (refcr, refcr-svc, criu)."""
    images = os.path.join(wdir, f"img-{tool}")
    os.mkdir(images)
    p = start(bins, w, wdir)
    try:
        if tool == "refcr-svc":
            assert service is not None
            d = service.run(lambda: service.client.dump(p.pid, images, log_file="dump.log"))
            reap_all(p.pid)
            r = service.run(lambda: service.client.restore(images, log_file="restore.log"))
        else:
            d = run_tool(tool_cmd(tool) + ["dump", "-t", str(p.pid), "-D", images, "-o", "dump.log"],
                         os.path.join(images, "dump.log"))
            reap_all(p.pid)
            r = run_tool(tool_cmd(tool) + ["restore", "-D", images, "-o", "restore.log", "-d"],
                         os.path.join(images, "restore.log"))
        verify(p.pid, wdir)
        return {"dump": d.seconds, "restore": r.seconds, "size": dir_size(images),
                "dump_cpu": d.cpu, "restore_cpu": r.cpu, "dump_rss": d.maxrss, "restore_rss": r.maxrss}
    finally:
        kill_tree(p.pid)
        shutil.rmtree(images, ignore_errors=True)


def limit(bins: dict[str, str], w: Workload, wdir: str) -> dict[str, float]:
    """The same pages through the bare system calls (bench/limit.c)."""
    file = os.path.join(wdir, "limit.img")
    p = start(bins, w, wdir)
    try:
        out = {}
        for phase, argv in (("dump", [bins["limit"], "dump", str(p.pid), file]),
                            ("restore", [bins["limit"], "restore", file])):
            res = subprocess.run(argv, capture_output=True, text=True)
            if res.returncode:
                raise BenchError(f"limit {phase}: {res.stderr.strip()}")
            seconds, cpu, size = res.stdout.split()
            out[phase], out[f"{phase}_cpu"], out["size"] = float(seconds), float(cpu), int(size)
        return out
    finally:
        kill_tree(p.pid)
        for name in (file, file + ".runs"):
            if os.path.exists(name):
                os.unlink(name)


def incremental(bins: dict[str, str], w: Workload, wdir: str) -> dict[str, float]:
    """pre-dump, 1% of the pages rewritten, dump --track-mem, restore, check."""
    pre, inc = os.path.join(wdir, "img-pre"), os.path.join(wdir, "img-inc")
    os.mkdir(pre)
    os.mkdir(inc)
    refcr = tool_cmd("refcr")
    p = start(bins, w, wdir)
    try:
        pd = run_tool(refcr + ["pre-dump", "-t", str(p.pid), "-D", pre, "-o", "dump.log"],
                      os.path.join(pre, "dump.log"))
        change_pages(p.pid, wdir, 1)
        d = run_tool(refcr + ["dump", "-t", str(p.pid), "-D", inc, "-o", "dump.log", "--track-mem",
                              "--prev-images-dir", "../img-pre"], os.path.join(inc, "dump.log"))
        reap_all(p.pid)
        r = run_tool(refcr + ["restore", "-D", inc, "-o", "restore.log", "-d"],
                     os.path.join(inc, "restore.log"))
        verify(p.pid, wdir)
        return {"predump": pd.seconds, "predump_size": dir_size(pre), "dump": d.seconds,
                "size": dir_size(inc), "dump_cpu": d.cpu, "dump_rss": d.maxrss, "restore": r.seconds}
    finally:
        kill_tree(p.pid)
        shutil.rmtree(pre, ignore_errors=True)
        shutil.rmtree(inc, ignore_errors=True)


def has_incremental() -> bool:
    res = subprocess.run(tool_cmd("refcr") + ["--help"], capture_output=True, text=True)
    if "pre-dump" not in res.stdout:
        return False
    res = subprocess.run(tool_cmd("refcr") + ["dump", "--help"], capture_output=True, text=True)
    return "--track-mem" in res.stdout and "--prev-images-dir" in res.stdout


# -------------------------------------------------------------- the run ---

@dataclass
class Results:
    """Every run's figures: results[workload][side] = list of dicts."""

    runs: dict[str, dict[str, list[dict[str, float]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, w: str, side: str, figures: dict[str, float]) -> None:
        self.runs.setdefault(w, {}).setdefault(side, []).append(figures)

    def medians(self) -> dict[str, dict[str, dict[str, float]]]:
        return {w: {side: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                    for side, runs in sides.items()} for w, sides in self.runs.items()}

    def median(self, w: str, side: str, key: str) -> float | None:
        vals = [r[key] for r in self.runs.get(w, {}).get(side, []) if key in r]
        return statistics.median(vals) if vals else None


def bench_workload(w: Workload, n: int, bins: dict[str, str], root: str, res: Results,
                   sides: dict[str, bool], service: Service | None) -> None:
    wdir = tempfile.mkdtemp(prefix=f"{w.name}-", dir=root)
    steps: list[tuple[str, Callable[[], dict[str, float]]]] = [("refcr", lambda: cycle("refcr", bins, w, wdir))]
    if service is not None:
        steps.append(("refcr-svc", lambda: cycle("refcr-svc", bins, w, wdir, service)))
    if w.memory:
        steps.insert(0, ("limit", lambda: limit(bins, w, wdir)))
    if sides["criu"]:
        steps.append(("criu", lambda: cycle("criu", bins, w, wdir)))
    if sides["incremental"] and w.memory:
        steps.append(("incremental", lambda: incremental(bins, w, wdir)))
    criu_failed = False
    try:
        for i in range(n):
            # interleaved, and the order rotates every run: the machine's drifts hit every side alike
            order = steps[i % len(steps):] + steps[:i % len(steps)]
            for side, fn in order:
                if side == "criu" and criu_failed:
                    continue
                try:
                    figures = fn()
                except BenchError as exc:
                    if side == "criu":     # CRIU cannot do this workload: say so once, go on with it for the rest
                        criu_failed = True
                        res.notes.append(f"criu failed on {w.name} ({exc})")
                        log(f"  criu: {exc}")
                        continue
                    raise BenchError(f"{w.name} run {i + 1}, {side}: {exc}") from None
                res.add(w.name, side, figures)
                log(f"[{w.name} {i + 1}/{n}] {side:<11} " + "  ".join(
                    f"{k} {v:.3f}s" for k, v in figures.items() if k in ("dump", "restore", "predump")))
    finally:
        shutil.rmtree(wdir, ignore_errors=True)


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def secs(v: float | None) -> str:
    return f"{v:.3f}" if v is not None else "-"


def paren(v: float | None) -> str:
    return f"({v:.3f})" if v is not None else ""


def mib(v: float | None) -> str:
    return f"{v / MIB:.1f}" if v is not None else "-"


TOOLS = (("refcr", "refcr"), ("refcr-svc", "refcr service"), ("criu", "criu"), ("limit", "limit"))


def table(res: Results, workloads: list[Workload], n: int) -> str:
    """One row per workload and tool: wall and CPU seconds of dump and
    restore, image size, peak RSS, and the ratios to CRIU and the limit."""
    m = res.median
    out = [f"medians of {n} runs; wall seconds (CPU seconds: user + system); MiB (image: files in the "
           "image dir but logs; peak: ru_maxrss of the cold command, dump/restore)", ""]
    head = (f"{'workload':<14}{'tool':<15}{'dump':>7}{'(cpu)':>8}{'restore':>9}{'(cpu)':>8}{'image':>8}"
            f"{'peak d/r':>13}{'d/criu':>8}{'r/criu':>8}{'d/lim':>7}{'r/lim':>7}")
    out += [head, "-" * len(head)]
    for w in workloads:
        name = w.name
        if name not in res.runs:
            continue
        cd, cr = m(name, "criu", "dump"), m(name, "criu", "restore")
        ld, lr = m(name, "limit", "dump"), m(name, "limit", "restore")
        for side, label in TOOLS:
            if side not in res.runs[name]:
                continue
            d, r = m(name, side, "dump"), m(name, side, "restore")
            peak = (f"{mib(m(name, side, 'dump_rss'))}/{mib(m(name, side, 'restore_rss'))}"
                    if side in ("refcr", "criu") else "")
            cmp = side in ("refcr", "refcr-svc")
            out.append(f"{name:<14}{label:<15}{secs(d):>7}{paren(m(name, side, 'dump_cpu')):>8}"
                       f"{secs(r):>9}{paren(m(name, side, 'restore_cpu')):>8}"
                       f"{mib(m(name, side, 'size')):>8}{peak:>13}"
                       f"{ratio(d, cd) if cmp else '':>8}{ratio(r, cr) if cmp else '':>8}"
                       f"{ratio(d, ld) if cmp else '':>7}{ratio(r, lr) if cmp else '':>7}")
    inc = [w for w in workloads if "incremental" in res.runs.get(w.name, {})]
    if inc:
        out += ["", "incremental: pre-dump, 1% of the pages rewritten, dump --track-mem --prev-images-dir",
                f"{'workload':<13}{'pre-dump':>9}{'pre MiB':>9}{'dump':>8}{'MiB':>8}{'vs full dump':>14}"
                f"{'size vs full':>14}{'restore':>9}"]
        for w in inc:
            d, full = m(w.name, "incremental", "dump"), m(w.name, "refcr", "dump")
            size, full_size = m(w.name, "incremental", "size"), m(w.name, "refcr", "size")
            out.append(f"{w.name:<13}{secs(m(w.name, 'incremental', 'predump')):>9}"
                       f"{mib(m(w.name, 'incremental', 'predump_size')):>9}{secs(d):>8}{mib(size):>8}"
                       f"{ratio(d, full):>14}{ratio(size, full_size):>14}"
                       f"{secs(m(w.name, 'incremental', 'restore')):>9}")
    return "\n".join(out)


def targets(res: Results) -> list[str]:
    """The issue's performance targets, judged on this run's medians."""
    m, lines = res.median, []
    for phase in ("dump", "restore"):
        got, lim = m("anon-1GiB", "refcr", phase), m("anon-1GiB", "limit", phase)
        if got is not None and lim:
            verdict = "met" if got <= 2 * lim else "MISSED"
            cpu, lim_cpu = m("anon-1GiB", "refcr", f"{phase}_cpu"), m("anon-1GiB", "limit", f"{phase}_cpu")
            lines.append(f"target: 1 GiB {phase} within 2x of the limit: {got:.3f} s = {got / lim:.2f}x "
                         f"of {lim:.3f} s -> {verdict} (CPU: {ratio(cpu, lim_cpu)})")
    for phase in ("dump", "restore"):
        got, lim = m("anon-1GiB", "refcr", phase), m("anon-1GiB", "limit", phase)
        if got is not None and lim:
            lines.append(f"target: 1 GiB {phase} within 1.2x of the limit: {got / lim:.2f}x -> "
                         f"{'met' if got <= 1.2 * lim else 'MISSED'}")
    slower = [f"{w} {phase} {m(w, 'refcr', phase) / m(w, 'criu', phase):.2f}x"  # type: ignore[operator]
              for w in res.runs for phase in ("dump", "restore")
              if m(w, "criu", phase) and m(w, "refcr", phase) is not None
              and m(w, "refcr", phase) > m(w, "criu", phase)]  # type: ignore[operator]
    if any(m(w, "criu", "dump") for w in res.runs):
        lines.append("target: every dump and restore <= 1.0x CRIU's (cold command line): "
                     + (f"MISSED ({', '.join(slower)})" if slower else "met"))
    cold = [m("trivial", "refcr", p) for p in ("dump", "restore")]
    warm = [m("trivial", "refcr-svc", p) for p in ("dump", "restore")]
    if None not in cold and None not in warm:
        speedup = (cold[0] + cold[1]) / (warm[0] + warm[1])  # type: ignore[operator]
        lines.append(f"target: service mode at least 2x faster than cold on trivial: {speedup:.2f}x -> "
                     f"{'met' if speedup >= 2 else 'MISSED'}")
    d, r = m("trivial", "refcr", "dump"), m("trivial", "refcr", "restore")
    if d is not None and r is not None:
        verdict = "met" if d + r < 0.5 else "MISSED"
        cpu = (m("trivial", "refcr", "dump_cpu") or 0) + (m("trivial", "refcr", "restore_cpu") or 0)
        lines.append(f"target: trivial process dump+restore under 0.5 s: {d:.3f} + {r:.3f} = "
                     f"{d + r:.3f} s -> {verdict} (CPU {cpu:.3f} s)")
    return lines


def bytecode(root: str, off: bool, res: Results) -> None:
    """refcr runs as installed: its modules' bytecode cached (in a private
    prefix, nothing written into the tree), unless asked not to."""
    if off:
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        res.notes.append("--no-bytecode-cache: refcr's modules are compiled at every start")
        return
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(root, "pycache")


def git_head() -> str:
    res = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return res.stdout.strip() or "unknown"


def select(args: argparse.Namespace) -> list[Workload]:
    pool = QUICK if args.quick else REAL if args.real else WORKLOADS + REAL
    if not args.only:
        return pool
    names = args.only.split(",")
    known = {w.name: w for w in WORKLOADS + REAL + QUICK}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BenchError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, help="runs per workload (default 5, --quick 3)")
    ap.add_argument("--quick", action="store_true", help="smaller workloads, 3 runs")
    ap.add_argument("--only", metavar="NAME,...", help="just these workloads")
    ap.add_argument("--json", metavar="FILE", help="write every figure as JSON to FILE")
    ap.add_argument("--real", action="store_true", help="just the programs shaped like real ones")
    ap.add_argument("--no-criu", action="store_true", help="do not try criu ($REFCR_BENCH_CRIU, else on PATH)")
    ap.add_argument("--no-service", action="store_true", help="no `refcr service` rows")
    ap.add_argument("--dir", help="where images go (default: a temporary dir in /var/tmp)")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="compile refcr's modules at every start (as with PYTHONDONTWRITEBYTECODE)")
    args = ap.parse_args()
    n = args.runs if args.runs is not None else (3 if args.quick else 5)
    try:
        if n < 1:
            raise BenchError(f"--runs {n}: at least one run")
        workloads = select(args)
        if os.geteuid() != 0:
            raise BenchError("run as root (dump and restore need it)")
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        root = tempfile.mkdtemp(prefix="refcr-bench-", dir=args.dir or "/var/tmp")
        try:
            bins = build(root)
            res = Results()
            criu = None if args.no_criu else criu_binary()
            why = "not asked for" if args.no_criu else criu_works(criu) if criu else \
                "none ($REFCR_BENCH_CRIU unset and no criu on PATH)"
            sides = {"criu": why is None, "incremental": has_incremental()}
            res.notes.append(f"criu: {criu}" if why is None else f"criu: {why}")
            if not sides["incremental"]:
                res.notes.append("incremental dump: not available (refcr has no pre-dump / dump --track-mem)")
            bytecode(root, args.no_bytecode_cache, res)
            log("warm-up: one untimed trivial cycle")
            cycle("refcr", bins, WORKLOADS[0], tempfile.mkdtemp(dir=root))
            service = None if args.no_service else Service(root)
            try:
                for w in workloads:
                    log(f"{w.name}: {n} runs")
                    bench_workload(w, n, bins, root, res, sides, service)
            finally:
                if service is not None:
                    service.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    report = table(res, workloads, n)
    print(report)
    for line in targets(res) + [f"note: {note}" for note in res.notes]:
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       "commit": git_head(), "kernel": platform.release(), "cpus": os.cpu_count(),
                       "runs_per_workload": n, "notes": res.notes, "targets": targets(res),
                       "workloads": {w.name: {"kind": w.kind, "count": w.count} for w in workloads},
                       "medians": res.medians(), "results": res.runs}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
