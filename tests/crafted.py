"""Crafted images for the containment and fuzz tests: small real programs are
compiled, started, dumped once, and their image directories copied and
edited (through refcr's own image reader and writer) before each restore.

Programs (each leads its own session, waits for signals forever):

* ``files``: a shared file mapping (O_RDWR), a private mapping of a deleted
  file ("gone"), an open regular file, a named listening unix socket, all in
  the directory it is given, a unix socketpair, a netlink socket with groups
  and a packet socket bound to lo with a multicast membership and a fanout
  group;
* ``threads``: three threads, one of them with a pending signal queued;
* ``tree``: a parent and a child joined by a pipe with bytes in it;
* ``aio``: two aio contexts (io_setup 16 and 200), the first holding two
  completed requests not reaped;
* ``userns``: the ``tree`` program as pid 1 of a user namespace of its own
  (zdtm's uns flavor map: root is root, every other id shifted) with new
  PID, mount, net, IPC and UTS namespaces, so the images hold userns.img,
  the credentials seen from inside and the namespaces' images.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from refcr.images.imagedir import ImageDir

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60

SOURCES = {
    "files": r"""
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/netlink.h>
#include <linux/if_packet.h>
#include <arpa/inet.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	char path[4096];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK, .nl_groups = 0x20 };
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(0x88b5), .sll_ifindex = 1 };
	struct packet_mreq mr = { .mr_ifindex = 1, .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6,
		.mr_address = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb } };
	int fd, s, r, sp[2], n, g = 33, pk, fan = 4242;
	char *p;

	(void)argc;
	if (chdir(argv[1]))
		return 1;
	fd = open("data", O_RDWR);
	p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	r = open("gone", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (p == MAP_FAILED || r < 0 || write(r, "gone", 4) != 4)
		return 1;
	if (mmap(0, 4096, PROT_READ, MAP_PRIVATE, r, 0) == MAP_FAILED || close(r) || unlink("gone"))
		return 1;
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(path, argv[1]);
	strcat(path, "/sock");
	strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
	if (p == MAP_FAILED || bind(s, (void *)&a, sizeof(a)) || listen(s, 4))
		return 1;
	n = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || n < 0 || bind(n, (void *)&nl, sizeof(nl)))
		return 1;
	if (setsockopt(n, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)))
		return 1;
	p[0] = 'x';
	r = open("ready", O_WRONLY | O_CREAT, 0600);
	close(r);
	for (;;)
		pause();
}
""",
    "threads": r"""
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
static void *idle(void *arg) { (void)arg; for (;;) pause(); return 0; }
int main(int argc, char **argv)
{
	pthread_t t[3];
	sigset_t set;
	union sigval v = { .sival_int = 7 };
	int i, r;

	(void)argc;
	if (chdir(argv[1]))
		return 1;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &set, 0);
	for (i = 0; i < 3; i++)
		pthread_create(&t[i], 0, idle, 0);
	sigqueue(getpid(), SIGRTMIN, v);
	pthread_kill(t[1], SIGUSR1);
	r = open("ready", O_WRONLY | O_CREAT, 0600);
	close(r);
	for (;;)
		pause();
}
""",
    "tree": r"""
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	int p[2], r;

	(void)argc;
	setsid();               /* launched (userns): lead a session of its own; else it does already */
	if (chdir(argv[1]) || pipe(p))
		return 1;
	if (write(p[1], "queued", 6) != 6)
		return 1;
	if (fork() == 0) {
		close(p[1]);
		for (;;)
			pause();
	}
	r = open("ready", O_WRONLY | O_CREAT, 0600);
	close(r);
	for (;;)
		pause();
}
""",
    "aio": r"""
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	aio_context_t a = 0, b = 0;
	struct iocb cb[2], *p[2] = { &cb[0], &cb[1] };
	int fd = open("/dev/null", O_WRONLY), r;

	(void)argc;
	if (chdir(argv[1]) || fd < 0 || syscall(SYS_io_setup, 16, &a) || syscall(SYS_io_setup, 200, &b))
		return 1;
	memset(cb, 0, sizeof(cb));
	for (r = 0; r < 2; r++) {
		cb[r].aio_lio_opcode = IOCB_CMD_PWRITE;
		cb[r].aio_fildes = fd;
		cb[r].aio_buf = (unsigned long)"x";
		cb[r].aio_nbytes = 1;
		cb[r].aio_data = r + 1;
	}
	if (syscall(SYS_io_submit, a, 2, p) != 2)
		return 1;
	r = open("ready", O_WRONLY | O_CREAT, 0600);
	close(r);
	for (;;)
		pause();
}
""",
}


@dataclass(frozen=True)
class Dumped:
    """One dumped program: its images, the directory it ran in, its root pid."""

    name: str
    images: Path
    home: Path
    pid: int
    binary: Path


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), e.get("PYTHONPATH", "")) if p)
    return e


def refcr(*args: str, cwd: Path, timeout: float = TIMEOUT, extra_env: dict[str, str] | None = None,
          prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "refcr", *args], cwd=cwd,
                          env={**env(), **(extra_env or {})}, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, start_new_session=True)


# A program started through zdtm's launcher (zdtm/harness/nslaunch.py) instead
# of directly: name -> (its source, the launcher's options).
LAUNCHED = {"userns": ("tree", ("--userns",))}


def build(name: str, where: Path) -> Path:
    src = where / f"{name}.c"
    src.write_text(SOURCES[LAUNCHED[name][0] if name in LAUNCHED else name])
    out = where / name
    subprocess.run(["cc", "-O1", "-pthread", "-o", str(out), str(src)], check=True)
    return out


def dump_program(name: str, where: Path) -> Dumped:
    """Build, start and dump one program; the images are in where/NAME.img."""
    binary = build(name, where)
    home = where / f"{name}.home"
    home.mkdir()
    if name == "files":
        (home / "data").write_bytes(b"d" * 8192)
    pid, p = _start(name, binary, home)
    for _ in range(500):
        if (home / "ready").exists():
            break
        time.sleep(0.01)
    else:
        _kill(pid)
        raise RuntimeError(f"{name} did not start")
    images = where / f"{name}.img"
    res = refcr("dump", "-t", str(pid), "-D", str(images), "-o", str(where / f"{name}.dump.log"), cwd=where)
    if p is not None:
        p.wait(timeout=10)
    if res.returncode:
        _kill(pid)
        raise RuntimeError(f"dump of {name} failed: {res.stderr}")
    return Dumped(name, images, home, pid, binary)


def _start(name: str, binary: Path, home: Path) -> tuple[int, subprocess.Popen | None]:
    """The program's pid, and its Popen when it is our child (a launched one
    is re-parented: the launcher prints its pid and exits)."""
    if name not in LAUNCHED:
        p = subprocess.Popen([str(binary), str(home)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        return p.pid, p
    launcher = REPO / "zdtm" / "harness" / "nslaunch.py"
    log = home.parent / f"{name}.launch.log"     # the program's stderr too: a pipe would stay open
    with open(log, "w") as err:
        out = subprocess.run([sys.executable, str(launcher), *LAUNCHED[name][1], "--", str(binary), str(home)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
                             timeout=TIMEOUT, start_new_session=True)
    if out.returncode:
        raise RuntimeError(f"{name}: the launcher failed: {log.read_text().strip()}")
    return int(out.stdout.split()[0]), None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def copy_images(d: Dumped, to: Path) -> Path:
    shutil.copytree(d.images, to)
    return to


def edit(images: Path, type_name: str, fn: Callable[[list[Any]], None], *, id: Any = None) -> None:
    """Read one image, let fn change its entries in place, write it back."""
    with ImageDir(str(images), "r") as d:
        head, entries = d.read_head(type_name, id=id)
        fn(entries)
        os.unlink(d.file_path(type_name, id=id))
        d.write(type_name, entries, id=id, head=head)


def kill_restored(pid: int) -> None:
    """Kill a restored tree (its session) if the restore left it alive."""
    try:
        sid = os.getsid(pid)
    except ProcessLookupError:
        return
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    os.kill(int(entry), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for _ in range(200):
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pass
        if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z":
            return
        time.sleep(0.01)
