#!/usr/bin/env python3
"""Run zdtm scenarios WITHOUT checkpoint/restore (a sanity check of the tests).

    zdtm/run_plain.py [-k] [--ns] [--sleep SEC] [NAME ...]   (default: every scenario)

For each scenario: start it in a fresh work directory, wait for its pidfile,
let it run for a moment, send SIGTERM, wait for it to exit and check that the
outfile ends with exactly one result line, which is PASS.  The test process is
reparented to this script (PR_SET_CHILD_SUBREAPER) so its exit status is seen.

--ns starts each scenario the way the harness's "ns" flavor does: as pid 1 of
new PID, mount (with its own /proc), UTS, IPC and net namespaces, through
util-linux `unshare --fork`.  The pidfile then says 1; the outer pid is the
child of the unshare process, and unshare exits with the test's status.
Scenarios whose .desc restricts them to other flavors are skipped in that mode,
and those restricted to "ns" are skipped without it.
"""
import ast
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


# .desc keys of scenarios whose protocol includes the harness (a peer daemon,
# checkpoints, a pexpect terminal): they cannot run without it.
NEEDS_HARNESS = ("peer", "checkpoints", "outer_mnt")


def read_desc(name):
    """The scenario's .desc as a dict ({} without one)."""
    try:
        with open(os.path.join(STATIC, name + ".desc")) as f:
            return ast.literal_eval(f.read())
    except FileNotFoundError:
        return {}


def needs_harness(name):
    """The .desc key that makes a scenario need the pytest harness, or None."""
    desc = read_desc(name)
    if "shell_job" in str(desc.get("flags", "")).split():
        return "shell_job"
    return next((k for k in NEEDS_HARNESS if k in desc), None)


def missing_devices(name):
    """The .desc's 'device' paths this host lacks (the harness runs those in a guest)."""
    devices = read_desc(name).get("device", "")
    return [d for d in (devices.split() if isinstance(devices, str) else devices) if not os.path.exists(d)]


def flavors_of(name):
    fl = read_desc(name).get("flavor")
    return fl.split() if fl else None


def start_ns(binary, pidfile, outfile, work):
    """Start binary as pid 1 of new namespaces; returns (outer pid, Popen)."""
    up = subprocess.Popen(["unshare", "--fork", "--pid", "--mount-proc", "--uts",
                           "--ipc", "--net", binary,
                           "--pidfile=" + pidfile, "--outfile=" + outfile],
                          cwd=work, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    end = time.monotonic() + 30
    while not os.path.exists(pidfile):
        if up.poll() is not None or time.monotonic() > end:
            if up.poll() is None:
                up.kill()
            up.wait()
            raise RuntimeError("start failed (rc=%s): %s" %
                               (up.returncode, up.stderr.read().decode().strip()))
        time.sleep(0.02)
    with open(pidfile) as f:
        inner = f.read().strip()
    if inner != "1":
        up.kill()
        up.wait()
        raise RuntimeError("pidfile says %r, not 1" % inner)
    with open("/proc/%d/task/%d/children" % (up.pid, up.pid)) as f:
        kids = f.read().split()
    if len(kids) != 1:
        up.kill()
        up.wait()
        raise RuntimeError("unshare has children %r" % kids)
    return int(kids[0]), up


def prepare(name, workroot):
    """(binary, work dir, pidfile, outfile, out(), bad(why)) of one run:
    out() reads the outfile so far, bad() is a failed result quoting it."""
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

    return binary, work, pidfile, outfile, out, bad


def run_one_ns(name, workroot, sleep, keep):
    binary, work, pidfile, outfile, out, bad = prepare(name, workroot)
    if not os.access(binary, os.X_OK):
        return False, "no binary %s (build failed?)" % binary
    try:
        pid, up = start_ns(binary, pidfile, outfile, work)
    except RuntimeError as e:
        return bad(str(e))
    time.sleep(sleep)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return bad("test process %d died before SIGTERM" % pid)
    try:
        rc = up.wait(30)
    except subprocess.TimeoutExpired:
        up.kill()
        os.kill(pid, signal.SIGKILL)
        up.wait()
        return bad("test process %d did not exit after SIGTERM" % pid)
    reap_others()
    return verdict(out(), rc, bad, work, keep)


def verdict(text, rc, bad, work, keep):
    """rc: exit status, or -SIG if killed."""
    lines = text.splitlines()
    results = [l for l in lines if l == "PASS" or l.startswith("FAIL")]
    if rc < 0:
        return bad("killed by signal %d" % -rc)
    if len(results) != 1:
        return bad("%d result lines (want exactly 1), rc=%d" % (len(results), rc))
    if not lines or lines[-1] != results[0]:
        return bad("result line is not the last line")
    if results[0] != "PASS" or rc != 0:
        return bad("%s rc=%d" % (results[0], rc))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return True, ""


def leftovers():
    """Live processes reparented to us (a tree scenario left them behind);
    they are killed (by pid) and reaped."""
    me, left = os.getpid(), []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % e) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2:].split()
        if int(rest[1]) == me and rest[0] not in "ZX":
            left.append(int(e))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in left:
        wait_pid(pid, 5)
    return left


def run_one(name, workroot, sleep, keep):
    binary, work, pidfile, outfile, out, bad = prepare(name, workroot)
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
    left = leftovers()
    if left:
        return bad("processes left behind after the test exited: %s" % left)
    if os.WIFSIGNALED(status):
        rc = -os.WTERMSIG(status)
    else:
        rc = os.WEXITSTATUS(status)
    return verdict(out(), rc, bad, work, keep)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*")
    ap.add_argument("--sleep", type=float, default=0.5,
                    help="seconds between ready and SIGTERM (default 0.5)")
    ap.add_argument("-k", "--keep", action="store_true", help="keep work dirs")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--ns", action="store_true",
                    help="start each test as pid 1 of new pid/mnt/uts/ipc/net namespaces")
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
    skipped = []
    want = "ns" if args.ns else "h"
    for name in names:
        fl = flavors_of(name)
        if fl is not None and want not in fl:
            skipped.append(name)
            print("%-28s SKIP  (flavors: %s)" % (name, " ".join(fl)), flush=True)
            continue
        key = needs_harness(name)
        if key:
            skipped.append(name)
            print("%-28s SKIP  (.desc %r: needs the harness)" % (name, key), flush=True)
            continue
        missing = missing_devices(name)
        if missing:
            skipped.append(name)
            print("%-28s SKIP  (no %s here: pytest --zdtm-no-cr runs it in the QEMU guest)"
                  % (name, " ".join(missing)), flush=True)
            continue
        t = time.monotonic()
        if args.ns:
            ok, why = run_one_ns(name, workroot, args.sleep, args.keep)
        else:
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
    ran = len(names) - len(skipped)
    print("%d/%d passed%s" % (ran - len(failed), ran,
                              ", %d skipped" % len(skipped) if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
