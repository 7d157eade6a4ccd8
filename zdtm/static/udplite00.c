/*
 * udplite00: UDP-Lite sockets come back like UDP ones (issue 16).
 *
 * v4: `srv` bound to 127.0.0.1 with UDPLITE_RECV_CSCOV 12 holds two datagrams
 * from `cli`, bound and with UDPLITE_SEND_CSCOV 16 (at least the receiver's 12: less is dropped); `con` is connected to srv
 * with UDP_CORK off and shut down for reading.  v6: `srv6` bound to ::1 holds one
 * datagram from `cli6` (SEND_CSCOV 20).  After restore: the names and coverage
 * options read back; srv's and srv6's datagrams read in order with the same bytes
 * and sender; nothing more is queued; a datagram sent from cli (partial coverage)
 * and from con reaches srv with the right sender; con shows POLLRDHUP.
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#define SOL_UDPLITE 136
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11

union addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

static socklen_t alen(const union addr *a)
{
	return a->sa.sa_family == AF_INET ? sizeof(a->in) : sizeof(a->in6);
}

static int bound(int family, union addr *a)
{
	socklen_t l = sizeof(*a);
	int fd = socket(family, SOCK_DGRAM, IPPROTO_UDPLITE);

	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->in.sin_family = AF_INET;
		a->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_addr = in6addr_loopback;
	}
	if (fd < 0 || bind(fd, &a->sa, alen(a)) || getsockname(fd, &a->sa, &l))
		fail("bound UDP-Lite socket");
	return fd;
}

static void set_opt(int fd, int opt, int val)
{
	if (setsockopt(fd, SOL_UDPLITE, opt, &val, sizeof(val)))
		fail("setsockopt %d", opt);
}

static void to(int fd, const char *data, union addr *dst)
{
	ssize_t n = dst ? sendto(fd, data, strlen(data), 0, &dst->sa, alen(dst)) : send(fd, data, strlen(data), 0);

	if (n != (ssize_t)strlen(data))
		pr_err("sending \"%s\"", data);
}

static void expect(int fd, const char *want, union addr *from, const char *who)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[128];
	union addr got;
	socklen_t l = sizeof(got);
	ssize_t n;

	memset(&got, 0, sizeof(got));
	poll(&p, 1, 5000);
	n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, &got.sa, &l);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, n)) {
		pr_err("%s: got %zd bytes, want \"%s\"", who, n, want);
		return;
	}
	if (l != alen(from) || memcmp(&got, from, l))
		pr_err("%s: \"%s\" has another sender", who, want);
}

static void empty(int fd, const char *who)
{
	char c;

	if (recv(fd, &c, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
		pr_err("%s: more datagrams than were queued", who);
}

static void same_name(int fd, union addr *want, const char *who)
{
	union addr got;
	socklen_t l = sizeof(got);

	memset(&got, 0, sizeof(got));
	if (getsockname(fd, &got.sa, &l) || l != alen(want) || memcmp(&got, want, l))
		pr_err("%s: bound elsewhere", who);
}

static void want_opt(int fd, int opt, int want, const char *who)
{
	int got = test_getsockopt_int(fd, SOL_UDPLITE, opt);

	if (got != want)
		pr_err("%s: UDP-Lite option %d is %d, not %d", who, opt, got, want);
}

int main(int argc, char **argv)
{
	union addr as, ac, acon, a6s, a6c;
	int srv, cli, con, srv6, cli6;
	struct pollfd p;

	test_init(argc, argv);
	test_lo_up();
	srv = bound(AF_INET, &as);
	set_opt(srv, UDPLITE_RECV_CSCOV, 12);
	cli = bound(AF_INET, &ac);
	set_opt(cli, UDPLITE_SEND_CSCOV, 16);
	con = bound(AF_INET, &acon);
	if (connect(con, &as.sa, alen(&as)) || shutdown(con, SHUT_RD))
		fail("connect, shutdown");
	to(cli, "first, covered partly", &as);
	to(cli, "second", &as);
	srv6 = bound(AF_INET6, &a6s);
	cli6 = bound(AF_INET6, &a6c);
	set_opt(cli6, UDPLITE_SEND_CSCOV, 20);
	to(cli6, "six, its first twelve bytes covered", &a6s);
	p = (struct pollfd){ .fd = srv6, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		fail("nothing queued on srv6");

	test_daemon();
	test_waitsig();

	same_name(srv, &as, "srv");
	same_name(cli, &ac, "cli");
	same_name(con, &acon, "con");
	same_name(srv6, &a6s, "srv6");
	want_opt(srv, UDPLITE_RECV_CSCOV, 12, "srv");
	want_opt(cli, UDPLITE_SEND_CSCOV, 16, "cli");
	want_opt(cli6, UDPLITE_SEND_CSCOV, 20, "cli6");
	expect(srv, "first, covered partly", &ac, "srv");
	expect(srv, "second", &ac, "srv");
	empty(srv, "srv");
	expect(srv6, "six, its first twelve bytes covered", &a6c, "srv6");
	empty(srv6, "srv6");
	to(cli, "after restore, from cli", &as);
	expect(srv, "after restore, from cli", &ac, "srv after restore");
	to(con, "after restore, from con", NULL);
	expect(srv, "after restore, from con", &acon, "srv after restore");
	p = (struct pollfd){ .fd = con, .events = POLLRDHUP };
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLRDHUP))
		pr_err("con: reading is no longer shut down");
	test_result();
}
