/*
 * tcp_established00: established TCP connections, both ends in the tree (--tcp-established).
 *
 * IPv4, both ends in the root: the client `c4` (TCP_NODELAY, small send buffer) writes
 * a counted stream until its send buffer is full, so bytes wait unread in the server's
 * receive queue and unacknowledged / unsent in the client's send queue; the server has
 * read only the first READ0 bytes; the server `a4` (accepted from a listener that stays
 * open on the same port) sent BACK0 bytes the client has not read.  IPv6: the root holds
 * the accepted end, a child the client end; the root sent CHILD0 bytes the child has not
 * read.  After restore every byte arrives once, in order (offset-checked patterns, exact
 * counts, then nothing more), addresses and state are the same, and both connections
 * still carry data both ways and close cleanly (EOF seen after shutdown).
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ0	1000
#define BACK0	3000
#define CHILD0	5000
#define AFTER	4000

static void nothing_more(int fd, const char *who)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, 100) > 0 && recv(fd, &c, 1, MSG_DONTWAIT) > 0)
		pr_err("%s: more bytes than were sent", who);
}

static void send_pattern(int fd, size_t len, uint64_t seed, size_t off, const char *who)
{
	char *b = malloc(len);

	if (!b)
		fail("malloc");
	datagen_at(b, len, seed, off);
	if (test_write_all(fd, b, len) != (ssize_t)len)
		pr_err("%s: write", who);
	free(b);
}

static void pair(int family, int *l, int *c, int *a, int rcvbuf, int sndbuf)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	*l = socket(family, SOCK_STREAM, 0);
	if (*l < 0 || (rcvbuf && setsockopt(*l, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf))) ||
	    bind(*l, family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6,
		 family == AF_INET ? sizeof(a4) : sizeof(a6)) ||
	    listen(*l, 4) || getsockname(*l, (struct sockaddr *)&ss, &len))
		fail("listener");
	*c = socket(family, SOCK_STREAM, 0);
	if (*c < 0 || (sndbuf && setsockopt(*c, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf))) ||
	    connect(*c, (struct sockaddr *)&ss, len))
		fail("connect");
	*a = accept(*l, NULL, NULL);
	if (*a < 0)
		fail("accept");
}

struct names {
	struct sockaddr_storage local, peer;
	socklen_t llen, plen;
};

static void get_names(int fd, struct names *n)
{
	n->llen = n->plen = sizeof(n->local);
	memset(n, 0, sizeof(*n));
	n->llen = n->plen = sizeof(n->local);
	if (getsockname(fd, (struct sockaddr *)&n->local, &n->llen) ||
	    getpeername(fd, (struct sockaddr *)&n->peer, &n->plen))
		pr_err("getsockname/getpeername");
}

static void same_names(int fd, struct names *want, const char *who)
{
	struct names now;
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);

	get_names(fd, &now);
	if (memcmp(&now, want, sizeof(now)))
		pr_err("%s: addresses changed", who);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) || ti.tcpi_state != TCP_ESTABLISHED)
		pr_err("%s: not established (state %d)", who, ti.tcpi_state);
}

int main(int argc, char **argv)
{
	int l4, c4, a4, l6, c6, a6, one = 1, flags;
	size_t w1 = 0;
	struct names nc4, na4, nc6, na6;
	char buf[READ0], *chunk;
	pid_t pid;

	test_init(argc, argv);
	test_lo_up();

	pair(AF_INET, &l4, &c4, &a4, 16384, 16384);
	pair(AF_INET6, &l6, &c6, &a6, 0, 0);
	if (setsockopt(c4, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		fail("TCP_NODELAY");
	get_names(c4, &nc4);
	get_names(a4, &na4);
	get_names(c6, &nc6);
	get_names(a6, &na6);

	pid = test_fork();
	if (pid == 0) {
		close(a6);
		close(l6);
		close(a4);
		close(c4);
		close(l4);
		test_child_ready();
		test_waitsig();
		same_names(c6, &nc6, "child c6");
		test_expect_pattern(c6, CHILD0, 3, 0, "child: bytes sent before the dump");
		send_pattern(c6, AFTER, 4, 0, "child");
		if (shutdown(c6, SHUT_WR))
			pr_err("child: shutdown");
		if (read(c6, buf, 1) != 0)
			pr_err("child: no EOF after the root shut down");
		test_child_exit();
	}
	close(c6);
	send_pattern(a6, CHILD0, 3, 0, "root to child");

	/* fill: the client writes until its send buffer is full */
	chunk = malloc(4096);
	if (!chunk)
		fail("malloc");
	flags = fcntl(c4, F_GETFL);
	fcntl(c4, F_SETFL, flags | O_NONBLOCK);
	for (;;) {
		ssize_t n;

		datagen_at(chunk, 4096, 1, w1);
		n = write(c4, chunk, 4096);
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = c4, .events = POLLOUT };

			if (poll(&p, 1, 200) == 0)
				break;      /* the peer's window stays closed */
			continue;
		}
		if (n <= 0)
			fail("fill write");
		w1 += n;
	}
	fcntl(c4, F_SETFL, flags);
	if (test_expect_pattern(a4, READ0, 1, 0, "first bytes"))
		fail("first bytes");
	send_pattern(a4, BACK0, 2, 0, "server back");
	usleep(50000);
	test_msg("client wrote %zu bytes before the dump\n", w1);

	test_daemon();
	test_waitsig();

	same_names(c4, &nc4, "c4");
	same_names(a4, &na4, "a4");
	same_names(a6, &na6, "a6");
	if (test_getsockopt_int(c4, IPPROTO_TCP, TCP_NODELAY) != 1 || test_getsockopt_int(a4, IPPROTO_TCP, TCP_NODELAY) != 0)
		pr_err("TCP_NODELAY changed");
	test_expect_pattern(c4, BACK0, 2, 0, "client: bytes the server sent before the dump");
	test_expect_pattern(a4, w1 - READ0, 1, READ0, "server: bytes the client sent before the dump");
	nothing_more(a4, "server");
	nothing_more(c4, "client");
	send_pattern(c4, AFTER, 5, 0, "client after");
	if (shutdown(c4, SHUT_WR))
		pr_err("shutdown c4");
	test_expect_pattern(a4, AFTER, 5, 0, "server: bytes sent after restore");
	if (read(a4, buf, 1) != 0)
		pr_err("server: no EOF after the client shut down");
	send_pattern(a4, AFTER, 6, 0, "server after");
	close(a4);
	test_expect_pattern(c4, AFTER, 6, 0, "client: bytes sent after restore");
	if (read(c4, buf, 1) != 0)
		pr_err("client: no EOF after the server closed");

	test_children_kick(SIGTERM);
	test_expect_pattern(a6, AFTER, 4, 0, "root: bytes the child sent after restore");
	if (read(a6, buf, 1) != 0)
		pr_err("root: no EOF after the child shut down");
	shutdown(a6, SHUT_WR);
	test_children_wait();
	test_result();
	return 0;
}
