/*
 * tcp_established_no_option_fails: without --tcp-established an established TCP
 * connection cannot be dumped.  The dump must fail (crfail: the harness checks that it
 * failed and that the task survived unchanged); the connection must be untouched: bytes
 * queued on both sides before the dump arrive exactly once, and it still carries data
 * both ways and closes cleanly.
 */
#include "zdtmtst.h"

#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define N0	2000
#define N1	3000

static void expect(int fd, size_t len, uint64_t seed, const char *who)
{
	char buf[N1];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (test_read_all(fd, buf, len) != (ssize_t)len)
		pr_err("%s: short read", who);
	else if (datachk(buf, len, seed))
		pr_err("%s: wrong data", who);
	else if (poll(&p, 1, 50) > 0 && recv(fd, buf, 1, MSG_DONTWAIT) > 0)
		pr_err("%s: more bytes than were sent", who);
}

static void send_pattern(int fd, size_t len, uint64_t seed)
{
	char buf[N1];

	datagen(buf, len, seed);
	if (test_write_all(fd, buf, len) != (ssize_t)len)
		pr_err("write");
}

int main(int argc, char **argv)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	int l, c, a, repair = -1;
	char b;

	test_init(argc, argv);
	test_lo_up();
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a4, sizeof(a4)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&ss, &len))
		fail("listener");
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&ss, len))
		fail("connect");
	a = accept(l, NULL, NULL);
	if (a < 0)
		fail("accept");
	send_pattern(c, N0, 1);
	send_pattern(a, N0, 2);

	test_daemon();
	test_waitsig();

	if (getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl) || ti.tcpi_state != TCP_ESTABLISHED)
		pr_err("client: not established");
	tl = sizeof(repair);
	if (getsockopt(c, IPPROTO_TCP, TCP_REPAIR, &repair, &tl) || repair)
		pr_err("the client socket was left in repair mode");
	expect(a, N0, 1, "server, before");
	expect(c, N0, 2, "client, before");
	send_pattern(c, N1, 3);
	expect(a, N1, 3, "server, after");
	send_pattern(a, N1, 4);
	expect(c, N1, 4, "client, after");
	close(a);
	if (read(c, &b, 1) != 0)
		pr_err("no EOF");
	test_result();
	return 0;
}
