/*
 * udp_queue00: datagrams queued on UDP sockets come back with their senders.
 *
 * An IPv4 server bound to 127.0.0.1 holds three datagrams: from a client in
 * the tree (still bound), from a client closed since (its port is free), and
 * an empty one.  A connected IPv4 socket holds one from its peer.  An IPv6
 * server bound to ::1 holds two from an IPv6 client.  After restore each
 * reads back in order with the same bytes and the same sender address and
 * port, and nothing more is queued.
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

union addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

static int bound(int family, union addr *a)
{
	socklen_t l = sizeof(*a);
	int fd = socket(family, SOCK_DGRAM, 0);

	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->in.sin_family = AF_INET;
		a->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_addr = in6addr_loopback;
	}
	if (fd < 0 || bind(fd, &a->sa, family == AF_INET ? sizeof(a->in) : sizeof(a->in6)) ||
	    getsockname(fd, &a->sa, &l))
		fail("bound socket");
	return fd;
}

static void to(int fd, const char *data, union addr *dst)
{
	socklen_t l = dst->sa.sa_family == AF_INET ? sizeof(dst->in) : sizeof(dst->in6);

	if (sendto(fd, data, strlen(data), 0, &dst->sa, l) != (ssize_t)strlen(data))
		fail("sendto");
}

static void expect(int fd, const char *want, union addr *from, const char *who)
{
	char buf[64];
	union addr got;
	socklen_t l = sizeof(got);
	ssize_t n;

	memset(&got, 0, sizeof(got));
	n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, &got.sa, &l);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, n)) {
		pr_err("%s: got %zd bytes, want \"%s\"", who, n, want);
		return;
	}
	if (from->sa.sa_family == AF_INET ?
	    (got.in.sin_port != from->in.sin_port || got.in.sin_addr.s_addr != from->in.sin_addr.s_addr) :
	    (got.in6.sin6_port != from->in6.sin6_port ||
	     memcmp(&got.in6.sin6_addr, &from->in6.sin6_addr, 16)))
		pr_err("%s: \"%s\" has another sender", who, want);
}

static void empty(int fd, const char *who)
{
	char c;

	if (recv(fd, &c, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
		pr_err("%s: more datagrams than were queued", who);
}

int main(int argc, char **argv)
{
	union addr as, ac1, ac2, ap, aq, a6s, a6c;
	int s, c1, c2, p, q, s6, c6;
	socklen_t l;

	test_init(argc, argv);
	test_lo_up();
	s = bound(AF_INET, &as);
	c1 = bound(AF_INET, &ac1);
	c2 = bound(AF_INET, &ac2);
	to(c1, "from c1", &as);
	to(c2, "from c2, closed", &as);
	to(c1, "", &as);
	close(c2);
	p = bound(AF_INET, &ap);
	q = bound(AF_INET, &aq);
	l = sizeof(aq.in);
	if (connect(p, &aq.sa, l) || connect(q, &ap.sa, l))
		fail("connect");
	to(q, "to the connected one", &ap);
	s6 = bound(AF_INET6, &a6s);
	c6 = bound(AF_INET6, &a6c);
	to(c6, "six", &a6s);
	to(c6, "six again", &a6s);

	test_daemon();
	test_waitsig();

	expect(s, "from c1", &ac1, "server");
	expect(s, "from c2, closed", &ac2, "server");
	expect(s, "", &ac1, "server");
	empty(s, "server");
	expect(p, "to the connected one", &aq, "connected");
	empty(p, "connected");
	expect(s6, "six", &a6c, "ipv6 server");
	expect(s6, "six again", &a6c, "ipv6 server");
	empty(s6, "ipv6 server");
	to(c1, "after", &as);
	expect(s, "after", &ac1, "server after restore");
	test_result();
}
