/*
 * tcp_halfclosed00: half-closed TCP connections, both ends in the tree (--tcp-established).
 *
 * pair 1 (IPv4): `a1` wrote N1 bytes and shut down for writing (FIN_WAIT2), `b1` has not
 * read them and wrote M1 bytes back that `a1` has not read (CLOSE_WAIT).
 * pair 2 (IPv6): `e2` filled its peer's small receive window and its own send buffer and
 * then shut down for writing: its FIN waits behind unsent bytes (FIN_WAIT1); `f2` has
 * read nothing (ESTABLISHED).
 * pair 3 (IPv4): `c3` shut down for writing (FIN_WAIT2, small receive buffer); `d3`
 * filled c3's window and its own send buffer and then shut down too (LAST_ACK).
 * After restore: the same states; every byte arrives once and in order, then EOF where
 * a FIN was sent; a shut-down side gets EPIPE; the open sides still carry data; and
 * the connections finish closing (FIN_WAIT1 -> FIN_WAIT2, LAST_ACK -> CLOSE).
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define N1	3000
#define M1	2000
#define M2	1500
#define K2	1200

static void expect_state(int fd, int want, const char *who)
{
	if (test_tcp_wait_state(fd, want))
		pr_err("%s: state %d, expected %d", who, test_tcp_state(fd), want);
}

static void pair(int family, int *c, int *a, int crcvbuf, int csndbuf, int arcvbuf, int asndbuf)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int l;

	l = socket(family, SOCK_STREAM, 0);
	if (l < 0 || (arcvbuf && setsockopt(l, SOL_SOCKET, SO_RCVBUF, &arcvbuf, sizeof(arcvbuf))) ||
	    (asndbuf && setsockopt(l, SOL_SOCKET, SO_SNDBUF, &asndbuf, sizeof(asndbuf))) ||
	    bind(l, family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6,
		 family == AF_INET ? sizeof(a4) : sizeof(a6)) ||
	    listen(l, 1) || getsockname(l, (struct sockaddr *)&ss, &len))
		fail("listener");
	*c = socket(family, SOCK_STREAM, 0);
	if (*c < 0 || (crcvbuf && setsockopt(*c, SOL_SOCKET, SO_RCVBUF, &crcvbuf, sizeof(crcvbuf))) ||
	    (csndbuf && setsockopt(*c, SOL_SOCKET, SO_SNDBUF, &csndbuf, sizeof(csndbuf))) ||
	    connect(*c, (struct sockaddr *)&ss, len))
		fail("connect");
	*a = accept(l, NULL, NULL);
	if (*a < 0)
		fail("accept");
	close(l);
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

static void check_states(int a1, int b1, int e2, int f2, int c3, int d3, const char *when)
{
	test_msg("states %s: %d %d %d %d %d %d\n", when, test_tcp_state(a1), test_tcp_state(b1),
		 test_tcp_state(e2), test_tcp_state(f2), test_tcp_state(c3), test_tcp_state(d3));
	expect_state(a1, TCP_FIN_WAIT2, "a1");
	expect_state(b1, TCP_CLOSE_WAIT, "b1");
	expect_state(e2, TCP_FIN_WAIT1, "e2");
	expect_state(f2, TCP_ESTABLISHED, "f2");
	expect_state(c3, TCP_FIN_WAIT2, "c3");
	expect_state(d3, TCP_LAST_ACK, "d3");
}

int main(int argc, char **argv)
{
	int a1, b1, e2, f2, c3, d3;
	size_t w2, w3;

	test_init(argc, argv);
	test_lo_up();

	pair(AF_INET, &a1, &b1, 0, 0, 0, 0);
	send_pattern(a1, N1, 1, 0, "a1");
	if (shutdown(a1, SHUT_WR))
		fail("shutdown a1");
	if (test_tcp_wait_state(b1, TCP_CLOSE_WAIT) || test_tcp_wait_state(a1, TCP_FIN_WAIT2))
		fail("pair 1 did not half-close");
	send_pattern(b1, M1, 2, 0, "b1");

	pair(AF_INET6, &e2, &f2, 0, 8192, 1, 0);
	w2 = test_tcp_fill(e2, 3);
	if (shutdown(e2, SHUT_WR))
		fail("shutdown e2");

	pair(AF_INET, &c3, &d3, 4096, 0, 0, 8192);
	if (shutdown(c3, SHUT_WR))
		fail("shutdown c3");
	if (test_tcp_wait_state(d3, TCP_CLOSE_WAIT) || test_tcp_wait_state(c3, TCP_FIN_WAIT2))
		fail("pair 3 did not half-close");
	w3 = test_tcp_fill(d3, 4);
	if (shutdown(d3, SHUT_WR))
		fail("shutdown d3");
	test_msg("e2 queued %zu bytes, d3 %zu\n", w2, w3);

	check_states(a1, b1, e2, f2, c3, d3, "before");
	if (test_errors)
		fail("the states are not as planned");

	test_daemon();
	test_waitsig();

	check_states(a1, b1, e2, f2, c3, d3, "after restore");

	/* pair 1: both directions of data, then EOF and EPIPE where the FIN went */
	test_expect_pattern(b1, N1, 1, 0, "b1");
	test_expect_eof(b1, "b1");
	test_expect_pattern(a1, M1, 2, 0, "a1");
	test_expect_epipe(a1, "a1");
	send_pattern(b1, M2, 2, M1, "b1");
	test_expect_pattern(a1, M2, 2, M1, "a1");
	if (shutdown(b1, SHUT_WR))
		pr_err("shutdown b1");
	test_expect_eof(a1, "a1");
	expect_state(b1, TCP_CLOSE, "b1 at the end");

	/* pair 2: f2 reads everything and the FIN; e2's FIN is acknowledged at last */
	test_expect_pattern(f2, w2, 3, 0, "f2");
	test_expect_eof(f2, "f2");
	expect_state(e2, TCP_FIN_WAIT2, "e2 once its FIN is acknowledged");
	test_expect_epipe(e2, "e2");
	send_pattern(f2, K2, 5, 0, "f2");
	test_expect_pattern(e2, K2, 5, 0, "e2");
	close(f2);
	test_expect_eof(e2, "e2");

	/* pair 3: c3 reads d3's bytes and FIN, d3's FIN is acknowledged: CLOSE */
	test_expect_pattern(c3, w3, 4, 0, "c3");
	test_expect_eof(c3, "c3");
	expect_state(d3, TCP_CLOSE, "d3 once its FIN is acknowledged");
	test_expect_epipe(c3, "c3");
	test_expect_epipe(d3, "d3");

	test_result();
	return 0;
}
