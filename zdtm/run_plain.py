#!/usr/bin/env python3
"""Run zdtm scenarios WITHOUT checkpoint/restore (a sanity check of the tests).

    zdtm/run_plain.py [-k] [--sleep SEC] [NAME ...]   (default: every scenario)

For each scenario: start it in a fresh work directory, wait for its pidfile,
let it run for a moment, send SIGTERM, wait for it to exit and check that the
outfile ends with exactly one result line, which is PASS.  The test process is
reparented to this script (PR_SET_CHILD_SUBREAPER) so its exit status is seen.
"""
import argparse
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, "static")
PR_SET_CHILD_SUBREAPER = 36


def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def wait_pid(pid, timeout):
    """Wait for a (reparented) child; returns its wait status or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            r, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if r == pid:
            return status
        time.sleep(0.02)
    return None


def reap_others():
    while True:
        try:
            r, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if r == 0:
            return


def run_one(name, workroot, sleep, keep):
    binary = os.path.join(STATIC, name)
    work = os.path.join(workroot, name)
    os.makedirs(work)
    pidfile = os.path.join(work, name + ".pid")
    outfile = os.path.join(work, name + ".out")

    def out():
        try:
            with open(outfile) as f:
                return f.read()
        except OSError:
            return ""

    def bad(why):
        return False, why + "\n" + "".join("    | " + l + "\n" for l in out().splitlines())

    if not os.access(binary, os.X_OK):
        return False, "no binary %s (build failed?)" % binary
    p = subprocess.run([binary, "--pidfile=" + pidfile, "--outfile=" + outfile],
                       cwd=work, stdin=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        return bad("start failed (rc=%d): %s" % (p.returncode, p.stderr.decode().strip()))
    try:
        pid = int(open(pidfile).read().strip())
    except (OSError, ValueError) as e:
        return bad("no valid pidfile: %s" % e)

    time.sleep(sleep)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return bad("test process %d died before SIGTERM" % pid)
    status = wait_pid(pid, 30)
    if status is None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_pid(pid, 5)
        return bad("test process %d did not exit after SIGTERM" % pid)
    reap_others()

    lines = out().splitlines()
    results = [l for l in lines if l == "PASS" or l.startswith("FAIL")]
    if os.WIFSIGNALED(status):
        return bad("killed by signal %d" % os.WTERMSIG(status))
    rc = os.WEXITSTATUS(status)
    if len(results) != 1:
        return bad("%d result lines (want exactly 1), rc=%d" % (len(results), rc))
    if not lines or lines[-1] != results[0]:
        return bad("result line is not the last line")
    if results[0] != "PASS" or rc != 0:
        return bad("%s rc=%d" % (results[0], rc))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return True, ""


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*")
    ap.add_argument("--sleep", type=float, default=0.5,
                    help="seconds between ready and SIGTERM (default 0.5)")
    ap.add_argument("-k", "--keep", action="store_true", help="keep work dirs")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    if not args.no_build:
        subprocess.run(["make", "-s", "-C", HERE, "-j%d" % (os.cpu_count() or 1)],
                       check=True)
    names = args.names or sorted(
        f[:-2] for f in os.listdir(STATIC) if f.endswith(".c"))
    names = [os.path.basename(n).removesuffix(".c") for n in names]

    set_subreaper()
    workroot = tempfile.mkdtemp(prefix="zdtm-plain-")
    failed = []
    for name in names:
        t = time.monotonic()
        ok, why = run_one(name, workroot, args.sleep, args.keep)
        dt = time.monotonic() - t
        print("%-28s %s  (%.1fs)" % (name, "PASS" if ok else "FAIL", dt), flush=True)
        if not ok:
            failed.append(name)
            print("    " + why.rstrip("\n"), flush=True)
    if not failed and not args.keep:
        shutil.rmtree(workroot, ignore_errors=True)
    else:
        print("work dirs in", workroot)
    print("%d/%d passed" % (len(names) - len(failed), len(names)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
