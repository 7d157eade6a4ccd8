/*
 * reuseport00: SO_REUSEPORT groups: two UDP sockets and two TCP listeners,
 * each pair bound to one port of 127.0.0.1 with SO_REUSEPORT.
 *
 * After restore: each pair is still on one port with SO_REUSEPORT set; a
 * new socket with SO_REUSEPORT joins the port and one without is refused
 * (EADDRINUSE); 32 connections to the TCP port are spread over both
 * listeners by the group (each accepts at least one: both are in the
 * group; all 32 are accepted), and a datagram to the UDP port reaches one
 * of the UDP sockets.
 */
#include "zdtmtst.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define NCONN	32

static int bound(int type, int port, int reuse)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuse, sizeof(reuse)))
		fail("socket");
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -errno;
	}
	if (type == SOCK_STREAM && listen(fd, NCONN))
		fail("listen");
	return fd;
}

static int port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, (struct sockaddr *)&a, &len))
		return -1;
	return ntohs(a.sin_port);
}

static int reuse_of(int fd)
{
	int v = -1;
	socklen_t len = sizeof(v);

	getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len);
	return v;
}

static void check_group(int type, int a, int b, int port, const char *what)
{
	int fd;

	if (port_of(a) != port || port_of(b) != port)
		pr_err("%s: ports %d and %d, expected %d", what, port_of(a), port_of(b), port);
	if (reuse_of(a) != 1 || reuse_of(b) != 1)
		pr_err("%s: SO_REUSEPORT is off", what);
	fd = bound(type, port, 1);
	if (fd < 0)
		pr_err("%s: a new member cannot join the port (%d)", what, fd);
	else
		close(fd);
	fd = bound(type, port, 0);
	if (fd != -EADDRINUSE) {
		pr_err("%s: a socket without SO_REUSEPORT got the port (%d)", what, fd);
		if (fd >= 0)
			close(fd);
	}
}

static int drain(int l)
{
	int n = 0, fd;

	while ((fd = accept(l, NULL, NULL)) >= 0) {
		close(fd);
		n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int u1, u2, t1, t2, uport, tport, i, n1, n2, c[NCONN];
	char buf[8];

	test_init(argc, argv);
	u1 = bound(SOCK_DGRAM, 0, 1);
	if (u1 < 0 || (u2 = bound(SOCK_DGRAM, uport = port_of(u1), 1)) < 0)
		fail("the UDP group");
	t1 = bound(SOCK_STREAM, 0, 1);
	if (t1 < 0 || (t2 = bound(SOCK_STREAM, tport = port_of(t1), 1)) < 0)
		fail("the TCP group");

	test_daemon();
	test_waitsig();

	check_group(SOCK_DGRAM, u1, u2, uport, "udp");
	check_group(SOCK_STREAM, t1, t2, tport, "tcp");
	a.sin_port = htons(tport);
	for (i = 0; i < NCONN; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (c[i] < 0 || connect(c[i], (struct sockaddr *)&a, sizeof(a)))
			fail("connection %d", i);
	}
	usleep(100000);
	n1 = drain(t1);
	n2 = drain(t2);
	if (n1 + n2 != NCONN || !n1 || !n2)
		pr_err("the listeners accepted %d and %d of %d connections", n1, n2, NCONN);
	for (i = 0; i < NCONN; i++)
		close(c[i]);
	a.sin_port = htons(uport);
	i = socket(AF_INET, SOCK_DGRAM, 0);
	if (i < 0 || sendto(i, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)) != 1)
		fail("send to the UDP group");
	usleep(100000);
	if (recv(u1, buf, sizeof(buf), 0) != 1 && recv(u2, buf, sizeof(buf), 0) != 1)
		pr_err("no UDP socket of the group got the datagram");
	test_result();
	return 0;
}
