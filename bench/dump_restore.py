"""Wall time of one dump and one restore, for a few kinds of process.

    .venv/bin/python bench/dump_restore.py [--runs N] [--criu]

Each workload is started, dumped (killed), restored (-d), checked alive, and
killed; the median of N runs is printed per phase.  With --criu the same is
done with CRIU (Debian's `criu` package; `apt-get install criu`) as the
reference, when it works on this kernel -- if it fails, its error is shown.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = {
    "sleep": ["sleep", "1000"],
    "python": [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"],
    "python-256MiB": [sys.executable, "-c",
                      "import time\nb = bytearray(b'x' * (256 << 20))\nwhile True: time.sleep(1)"],
}


def tool_cmd(tool: str) -> list[str]:
    return [sys.executable, "-m", "refcr"] if tool == "refcr" else ["criu"]


class ToolFailed(Exception):
    """The tool failed; the message is the last error line of its log."""


def _step(tool: str, args: list[str], log: str) -> None:
    res = subprocess.run(tool_cmd(tool) + args, capture_output=True, text=True)
    if res.returncode:
        lines = res.stderr.strip().splitlines()
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                lines = [ln for ln in f.read().splitlines() if "rror" in ln] or lines
        raise ToolFailed(f"{args[0]}: {lines[-1] if lines else f'exit {res.returncode}'}")


def run_once(tool: str, argv: list[str]) -> tuple[float, float]:
    work = tempfile.mkdtemp(prefix=f"bench-{tool}-")
    images = os.path.join(work, "img")
    os.mkdir(images)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(0.5 if "256" not in " ".join(argv) else 2.0)
        t0 = time.perf_counter()
        _step(tool, ["dump", "-t", str(p.pid), "-D", images, "-o", "dump.log"], os.path.join(images, "dump.log"))
        t1 = time.perf_counter()
        p.wait()
        _step(tool, ["restore", "-D", images, "-o", "restore.log", "-d"], os.path.join(images, "restore.log"))
        t2 = time.perf_counter()
        os.kill(p.pid, 0)
        os.kill(p.pid, signal.SIGKILL)
        try:
            os.waitpid(p.pid, 0)
        except ChildProcessError:
            pass
        return t1 - t0, t2 - t1
    finally:
        if p.poll() is None:
            p.kill()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--criu", action="store_true", help="also measure CRIU as the reference")
    args = ap.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: restored processes come back to us
    tools = ["refcr"] + (["criu"] if args.criu else [])
    print(f"{'workload':<16}{'tool':<8}{'dump (s)':>10}{'restore (s)':>13}   (median of {args.runs})")
    for name, argv in WORKLOADS.items():
        for tool in tools:
            try:
                times = [run_once(tool, argv) for _ in range(args.runs)]
            except (ToolFailed, OSError) as exc:
                print(f"{name:<16}{tool:<8}  failed: {exc}")
                continue
            d = statistics.median(t[0] for t in times)
            r = statistics.median(t[1] for t in times)
            print(f"{name:<16}{tool:<8}{d:>10.3f}{r:>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
