"""The README demo: a process counting in memory is dumped, killed, restored,
and shown to count on from where it was.

Run it with ``python -m refcr.demo`` (``./dev.sh demo`` does).  It drives
the real `refcr` command line, so what it prints is what a user would type.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# The demo process: counts in a variable and prints the count on SIGUSR1.
COUNTER = r"""
import signal, sys
n = 0
def report(sig, frame):
    sys.stdout.write(f"{n}\n"); sys.stdout.flush()
signal.signal(signal.SIGUSR1, report)
while True:
    n += 1
"""


def say(msg: str) -> None:
    print(f"demo: {msg}", flush=True)


def refcr(*args: str) -> None:
    cmd = [sys.executable, "-m", "refcr", *args]
    say("$ refcr " + " ".join(args))
    subprocess.run(cmd, check=True)


def read_count(pid: int, out: str) -> int:
    """Ask the counter for its count (SIGUSR1) and read its answer."""
    before = os.path.getsize(out)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(out) as f:
            f.seek(before)
            line = f.readline()
        if line.endswith("\n"):
            return int(line)
        time.sleep(0.01)
    raise SystemExit("demo: the counter did not answer")


def main() -> int:
    work = tempfile.mkdtemp(prefix="refcr-demo-")
    out = os.path.join(work, "counter.out")
    images = os.path.join(work, "images")
    with open(out, "w") as sink:
        counter = subprocess.Popen([sys.executable, "-c", COUNTER], stdin=subprocess.DEVNULL,
                                   stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    pid = counter.pid
    restored = False
    try:
        time.sleep(1)
        say(f"counter process {pid} is counting in memory")
        first = read_count(pid, out)
        say(f"it has counted to {first:,}")
        refcr("dump", "-t", str(pid), "-D", images, "-o", "dump.log")
        counter.wait()        # reap it: the dump killed it
        last = read_last(out)
        say(f"dumped and killed (exit status {counter.returncode}); images: "
            + ", ".join(sorted(f for f in os.listdir(images) if f.endswith(".img"))))
        time.sleep(1)
        refcr("restore", "-D", images, "-o", "restore.log", "-d", "--pidfile", os.path.join(work, "pid"))
        restored = True
        with open(os.path.join(work, "pid")) as f:
            new_pid = int(f.read())
        now = read_count(new_pid, out)   # at once: a counter that started over would be near 0
        say(f"restored as pid {new_pid}; it has counted to {now:,}")
        if new_pid != pid or now <= last:
            say("FAILED: the restored process did not continue from where it was")
            return 1
        say(f"it continued from {last:,}: nothing was lost, and it did not start over")
        return 0
    finally:
        for p in (pid,) if restored else ():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if counter.poll() is None:
            counter.kill()
            counter.wait()
        shutil.rmtree(work, ignore_errors=True)


def read_last(out: str) -> int:
    with open(out) as f:
        lines = f.read().split()
    return int(lines[-1]) if lines else 0


if __name__ == "__main__":
    sys.exit(main())
