/*
 * tcp_listen00: listening TCP sockets (IPv4 and IPv6) and an unbound one.
 *
 * A v4 listener on 127.0.0.1 (SO_REUSEADDR, O_NONBLOCK, backlog 7, TCP_NODELAY),
 * a v6-only listener on ::1 (backlog 3, SO_KEEPALIVE), and an unbound TCP socket.
 * After restore: the same local addresses and ports, still listening with the same
 * backlog (tcp_info's tcpi_sacked of a listener), the options and file flags; each
 * listener accepts a new connection and carries data both ways; the unbound socket is
 * still unbound and can connect.  The lo device is brought up when it is down (pid 1
 * of a new network namespace).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

static void check_listener(int fd, struct sockaddr_storage *want, socklen_t wlen, int backlog,
			   const char *who)
{
	struct sockaddr_storage ss, peer;
	socklen_t len = sizeof(ss), plen = sizeof(peer);
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	int c, a, flags;
	char buf[16];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) || len != wlen || memcmp(&ss, want, len))
		pr_err("%s: local address changed", who);
	if (test_getsockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN) != 1)
		pr_err("%s: not listening", who);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) || ti.tcpi_state != TCP_LISTEN ||
	    ti.tcpi_sacked != (unsigned)backlog)
		pr_err("%s: state %d backlog %u, expected LISTEN %d", who, ti.tcpi_state, ti.tcpi_sacked,
		       backlog);
	c = socket(want->ss_family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)want, wlen)) {
		pr_err("%s: connect", who);
		return;
	}
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	a = accept(fd, (struct sockaddr *)&peer, &plen);
	fcntl(fd, F_SETFL, flags);
	if (a < 0) {
		pr_err("%s: accept", who);
		close(c);
		return;
	}
	if (write(c, "ping", 4) != 4 || read(a, buf, sizeof(buf)) != 4 || memcmp(buf, "ping", 4) ||
	    write(a, "pong", 4) != 4 || read(c, buf, sizeof(buf)) != 4 || memcmp(buf, "pong", 4))
		pr_err("%s: no data through an accepted connection", who);
	close(a);
	close(c);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_storage n4, n6, ss;
	socklen_t l4 = sizeof(n4), l6 = sizeof(n6), len = sizeof(ss);
	int one = 1, l4fd, l6fd, unb, c, a;

	test_init(argc, argv);
	test_lo_up();

	l4fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (l4fd < 0 || setsockopt(l4fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(l4fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    bind(l4fd, (struct sockaddr *)&a4, sizeof(a4)) || listen(l4fd, 7) ||
	    getsockname(l4fd, (struct sockaddr *)&n4, &l4))
		fail("v4 listener");
	l6fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (l6fd < 0 || setsockopt(l6fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) ||
	    setsockopt(l6fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) ||
	    bind(l6fd, (struct sockaddr *)&a6, sizeof(a6)) || listen(l6fd, 3) ||
	    getsockname(l6fd, (struct sockaddr *)&n6, &l6))
		fail("v6 listener");
	unb = socket(AF_INET, SOCK_STREAM, 0);
	if (unb < 0)
		fail("socket");

	/* a connection accepted and closed before the dump leaves nothing behind */
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&n4, l4))
		fail("connect before");
	while ((a = accept(l4fd, NULL, NULL)) < 0)
		usleep(1000);
	close(a);
	close(c);

	test_daemon();
	test_waitsig();

	check_listener(l4fd, &n4, l4, 7, "v4");
	check_listener(l6fd, &n6, l6, 3, "v6");
	if (!(fcntl(l4fd, F_GETFL) & O_NONBLOCK) || (fcntl(l6fd, F_GETFL) & O_NONBLOCK))
		pr_err("O_NONBLOCK changed");
	if (test_getsockopt_int(l4fd, SOL_SOCKET, SO_REUSEADDR) != 1 || test_getsockopt_int(l6fd, SOL_SOCKET, SO_REUSEADDR) != 0)
		pr_err("SO_REUSEADDR changed");
	if (test_getsockopt_int(l4fd, IPPROTO_TCP, TCP_NODELAY) != 1 || test_getsockopt_int(l6fd, IPPROTO_TCP, TCP_NODELAY) != 0)
		pr_err("TCP_NODELAY changed");
	if (test_getsockopt_int(l6fd, SOL_SOCKET, SO_KEEPALIVE) != 1 || test_getsockopt_int(l4fd, SOL_SOCKET, SO_KEEPALIVE) != 0)
		pr_err("SO_KEEPALIVE changed");
	if (test_getsockopt_int(l6fd, IPPROTO_IPV6, IPV6_V6ONLY) != 1)
		pr_err("IPV6_V6ONLY lost");
	if (test_getsockopt_int(unb, SOL_SOCKET, SO_TYPE) != SOCK_STREAM || test_getsockopt_int(unb, SOL_SOCKET, SO_DOMAIN) != AF_INET)
		pr_err("unbound socket: wrong type");
	if (getsockname(unb, (struct sockaddr *)&ss, &len) || ((struct sockaddr_in *)&ss)->sin_port)
		pr_err("unbound socket got bound");
	if (connect(unb, (struct sockaddr *)&n4, l4))
		pr_err("unbound socket cannot connect");
	else if ((a = accept4(l4fd, NULL, NULL, 0)) >= 0)
		close(a);
	test_result();
	return 0;
}
