/*
 * tcp_established_ext00: an established TCP connection whose peer is outside the
 * dumped tree (--tcp-established; h flavor only: an outside process cannot reach the
 * loopback of the ns flavor's own network namespace).
 *
 * The root listens on 127.0.0.1 and forks a helper that forks the peer and exits: the
 * peer is reparented (to the harness, a child subreaper) and so is not a descendant of
 * the root, is not dumped and runs on through the checkpoint and restore.  It calls
 * setsid(): a process in the root's session or group would keep the root's pid in use,
 * and restore could not have it back.  So the harness does not see it at all; if the
 * test goes wrong the peer ends by itself (EOF or RST from the root, or a 30 s receive
 * timeout when the connection silently went away).
 *
 * Before the dump: the root sends N0 counted bytes, the peer checks them; the peer sends
 * N1, the root reads R of them and leaves the rest queued; both wait until nothing is
 * unacknowledged, then the peer blocks in read().  After restore: the root reads the
 * rest (offset-checked), sends N2; the peer checks them and answers with its verdict
 * byte and N3 bytes, then shuts down; the root checks those, sees EOF, closes; the peer
 * sees EOF with no extra byte and exits.  A RST, a lost or a duplicated byte on either
 * side is a failure (the peer's verdict travels over the connection itself).
 */
#include "zdtmtst.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define N0	20000
#define N1	30000
#define R	10000
#define N2	50000
#define N3	50000

static char buf[N2 > N3 ? N2 : N3];

static int qlen(int fd, unsigned long req)
{
	int n = -1;

	ioctl(fd, req, &n);
	return n;
}

/* read len bytes of pattern seed at offset off; 0 if right */
static int get(int fd, size_t len, uint64_t seed, size_t off)
{
	if (test_read_all(fd, buf, len) != (ssize_t)len)
		return -1;
	return datachk_at(buf, len, seed, off) ? -2 : 0;
}

static int put(int fd, size_t len, uint64_t seed)
{
	datagen(buf, len, seed);
	return test_write_all(fd, buf, len) == (ssize_t)len ? 0 : -1;
}

static void quiet(int fd)
{
	int i;

	for (i = 0; i < 5000 && qlen(fd, SIOCOUTQ) != 0; i++)
		usleep(1000);
}

static void peer(struct sockaddr_in *addr)
{
	struct timeval tv = { .tv_sec = 30 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc;
	pid_t me = getpid();
	char verdict = 'P', c;

	if (fd < 0 || connect(fd, (struct sockaddr *)addr, sizeof(*addr)))
		_exit(1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, &me, sizeof(me)) != sizeof(me))
		_exit(1);
	if ((rc = get(fd, N0, 1, 0))) {
		test_msg("peer: bytes before the dump: %d (errno %d)\n", rc, errno);
		_exit(1);
	}
	if (put(fd, N1, 2))
		_exit(1);
	quiet(fd);
	/* the tree is checkpointed and restored while we wait here */
	if ((rc = get(fd, N2, 3, 0))) {
		test_msg("peer: bytes after restore: %d (errno %d)\n", rc, errno);
		verdict = 'F';
	}
	if (write(fd, &verdict, 1) != 1 || put(fd, N3, 4) || shutdown(fd, SHUT_WR))
		_exit(1);
	rc = read(fd, &c, 1);
	if (rc != 0)
		test_msg("peer: expected EOF, read returned %d (errno %d)\n", rc, errno);
	_exit(0);
}

static void wait_gone(pid_t pid)
{
	char path[64], *stat = NULL, *p;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	for (i = 0; i < 5000; i++) {
		if (test_read_file(path, &stat) < 0)
			return;
		p = strrchr(stat, ')');
		if (p && (p[2] == 'Z' || p[2] == 'X')) {
			free(stat);
			return;
		}
		free(stat);
		usleep(1000);
	}
	pr_err("the peer %d did not exit", pid);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a4);
	int l, fd, rc, i, status;
	pid_t helper, peer_pid;
	char verdict;

	test_init(argc, argv);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a4, sizeof(a4)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a4, &len))
		fail("listener");
	helper = fork();
	if (helper < 0)
		fail("fork");
	if (helper == 0) {
		close(l);
		if (fork() == 0) {
			setsid();
			peer(&a4);
		}
		_exit(0);
	}
	if (waitpid(helper, &status, 0) != helper || status)
		fail("helper");
	fd = accept(l, NULL, NULL);
	if (fd < 0)
		fail("accept");
	close(l);
	if (test_read_all(fd, &peer_pid, sizeof(peer_pid)) != sizeof(peer_pid))
		fail("peer pid");
	if (put(fd, N0, 1))
		fail("send N0");
	if (get(fd, R, 2, 0))
		fail("first bytes from the peer");
	for (i = 0; i < 5000 && qlen(fd, SIOCINQ) != N1 - R; i++)
		usleep(1000);
	if (qlen(fd, SIOCINQ) != N1 - R)
		fail("the peer's bytes did not all arrive");
	quiet(fd);
	usleep(100000);
	test_msg("peer is %d\n", peer_pid);

	test_daemon();
	test_waitsig();

	if ((rc = get(fd, N1 - R, 2, R)))
		pr_err("bytes the peer sent before the dump: %d", rc);
	if (put(fd, N2, 3))
		pr_err("send after restore");
	if (read(fd, &verdict, 1) != 1)
		pr_err("no verdict from the peer");
	else if (verdict != 'P')
		pr_err("the peer says the bytes after restore were wrong");
	if ((rc = get(fd, N3, 4, 0)))
		pr_err("bytes the peer sent after restore: %d", rc);
	if ((rc = read(fd, &verdict, 1)) != 0)
		pr_err("expected EOF from the peer, got %d", rc);
	close(fd);
	wait_gone(peer_pid);
	test_result();
	return 0;
}
