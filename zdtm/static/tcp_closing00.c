/*
 * tcp_closing00: TCP connections in CLOSING (a simultaneous close: each side
 * sent its FIN, ours is not acknowledged yet) come back and finish closing
 * (issue 16; --tcp-established, both ends in the tree).
 *
 * For each of IPv4 and IPv6: `a` fills its peer's tiny receive window and
 * its own send buffer, then shuts down for writing, so its FIN waits behind
 * unsent bytes (FIN_WAIT1).  `b` writes M bytes back and shuts down too: its
 * FIN reaches `a` in FIN_WAIT1, so `a` goes to CLOSING and acknowledges it
 * (`b`: FIN_WAIT2).  No packet has to be dropped for this, so it runs in
 * every flavor.  After restore: the same states; `a` reads b's M bytes and
 * then EOF, a send on either side fails with EPIPE; `b` reads every byte `a`
 * queued, in order, then EOF; at last both sockets are closed (a's FIN was
 * acknowledged: TIME_WAIT, which leaves the fd in CLOSE).
 */
#include "zdtmtst.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define M 1800

static void expect_state(int fd, int want, const char *who)
{
	if (test_tcp_wait_state(fd, want))
		pr_err("%s: state %d, expected %d", who, test_tcp_state(fd), want);
}

/* a: the connecting end (small send buffer); b: the accepted end (tiny receive buffer) */
static void pair(int family, int *a, int *b)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int l, one = 1, snd = 8192;

	l = socket(family, SOCK_STREAM, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one)) ||
	    bind(l, family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6,
		 family == AF_INET ? sizeof(a4) : sizeof(a6)) ||
	    listen(l, 1) || getsockname(l, (struct sockaddr *)&ss, &len))
		fail("listener");
	*a = socket(family, SOCK_STREAM, 0);
	if (*a < 0 || setsockopt(*a, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)) ||
	    connect(*a, (struct sockaddr *)&ss, len))
		fail("connect");
	*b = accept(l, NULL, NULL);
	if (*b < 0)
		fail("accept");
	close(l);
}

struct conn {
	const char *name;
	int a, b;
	size_t queued;
	uint64_t seed;
};

static void make_closing(struct conn *c, int family)
{
	char buf[M];

	pair(family, &c->a, &c->b);
	c->queued = test_tcp_fill(c->a, c->seed);
	if (shutdown(c->a, SHUT_WR))
		fail("shutdown a");
	if (test_tcp_state(c->a) != TCP_FIN_WAIT1)
		fail("%s: a is in state %d, not FIN_WAIT1", c->name, test_tcp_state(c->a));
	datagen_at(buf, M, c->seed + 1, 0);
	if (test_write_all(c->b, buf, M) != M || shutdown(c->b, SHUT_WR))
		fail("b's bytes and FIN");
	if (test_tcp_wait_state(c->a, TCP_CLOSING) || test_tcp_wait_state(c->b, TCP_FIN_WAIT2))
		fail("%s: states %d/%d, not CLOSING/FIN_WAIT2", c->name, test_tcp_state(c->a), test_tcp_state(c->b));
	test_msg("%s: a queued %zu bytes\n", c->name, c->queued);
}

static void finish(struct conn *c)
{
	expect_state(c->a, TCP_CLOSING, "a after restore");
	expect_state(c->b, TCP_FIN_WAIT2, "b after restore");
	test_expect_epipe(c->a, "a");
	test_expect_epipe(c->b, "b");
	test_expect_pattern(c->a, M, c->seed + 1, 0, "a");
	test_expect_eof(c->a, "a");
	test_expect_pattern(c->b, c->queued, c->seed, 0, "b");
	test_expect_eof(c->b, "b");
	expect_state(c->a, TCP_CLOSE, "a once its FIN is acknowledged");
	expect_state(c->b, TCP_CLOSE, "b once it got the FIN");
}

int main(int argc, char **argv)
{
	struct conn c4 = { .name = "IPv4", .seed = 10 }, c6 = { .name = "IPv6", .seed = 20 };

	test_init(argc, argv);
	test_lo_up();
	make_closing(&c4, AF_INET);
	make_closing(&c6, AF_INET6);

	test_daemon();
	test_waitsig();

	finish(&c4);
	finish(&c6);
	test_result();
	return 0;
}
