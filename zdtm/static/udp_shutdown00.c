/*
 * udp_shutdown00: shutdown() of inet sockets comes back (issue 16: UDP SHUT_WR).
 *
 * v4: `cli` connected to `srv` and shut down for writing; `srv` bound and shut down for
 * reading; `both` bound and shut down both ways; `plain` connected to srv and not shut
 * down.  v6: `cli6` connected to ::1 and shut down for writing.  TCP: `tcp` bound (not
 * listening) and shut down for reading.  After restore: a send on a socket shut for
 * writing fails with EPIPE, the others still send; poll() shows POLLRDHUP where reading
 * was shut down and POLLHUP where both were, and nothing of the kind elsewhere.
 */
#include "zdtmtst.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int bound4(int type)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, type, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a4, sizeof(a4)))
		fail("bind");
	return fd;
}

static void shut(int fd, int how)
{
	if (shutdown(fd, how) && errno != ENOTCONN)
		fail("shutdown");
}

static short events(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents & (POLLRDHUP | POLLHUP);
}

static void check_send(int fd, int shut_wr, const char *who)
{
	ssize_t n = send(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (shut_wr && (n != -1 || errno != EPIPE))
		pr_err("%s: send after SHUT_WR gave %zd (errno %d), not EPIPE", who, n, errno);
	if (!shut_wr && n != 1)
		pr_err("%s: send failed", who);
}

static void check_events(int fd, short want, const char *who)
{
	short got = events(fd);

	if (got != want)
		pr_err("%s: poll shows %#x, expected %#x", who, got, want);
}

static void check_all(int cli, int srv, int both, int plain, int cli6, int tcp, const char *when)
{
	test_msg("checking %s\n", when);
	check_send(cli, 1, "cli");
	check_send(cli6, 1, "cli6");
	check_send(plain, 0, "plain");
	check_events(cli, 0, "cli");
	check_events(srv, POLLRDHUP, "srv");
	check_events(both, POLLRDHUP | POLLHUP, "both");
	check_events(plain, 0, "plain");
	check_events(tcp, POLLRDHUP | POLLHUP, "tcp");
}

int main(int argc, char **argv)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int cli, srv, both, plain, cli6, srv6, tcp;
	char buf[4];

	test_init(argc, argv);
	test_lo_up();

	srv = bound4(SOCK_DGRAM);
	if (getsockname(srv, (struct sockaddr *)&ss, &len))
		fail("getsockname");
	cli = socket(AF_INET, SOCK_DGRAM, 0);
	plain = socket(AF_INET, SOCK_DGRAM, 0);
	if (cli < 0 || plain < 0 || connect(cli, (struct sockaddr *)&ss, len) ||
	    connect(plain, (struct sockaddr *)&ss, len))
		fail("connect");
	both = bound4(SOCK_DGRAM);
	srv6 = socket(AF_INET6, SOCK_DGRAM, 0);
	cli6 = socket(AF_INET6, SOCK_DGRAM, 0);
	len = sizeof(a6);
	if (srv6 < 0 || cli6 < 0 || bind(srv6, (struct sockaddr *)&a6, sizeof(a6)) ||
	    getsockname(srv6, (struct sockaddr *)&a6, &len) || connect(cli6, (struct sockaddr *)&a6, len))
		fail("v6");
	tcp = bound4(SOCK_STREAM);

	shut(cli, SHUT_WR);
	shut(cli6, SHUT_WR);
	shut(srv, SHUT_RD);
	shut(both, SHUT_RDWR);
	shut(tcp, SHUT_RD);

	check_all(cli, srv, both, plain, cli6, tcp, "before");
	while (recv(srv, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;		/* plain's probe: nothing queued at dump time */

	test_daemon();
	test_waitsig();

	check_all(cli, srv, both, plain, cli6, tcp, "after restore");
	test_result();
	return 0;
}
