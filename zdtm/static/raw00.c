/*
 * raw00: raw IP sockets come back (issue 16).
 *
 * Not in the h flavor: a raw ICMP socket on the host gets a copy of every
 * ICMP packet there (the port-unreachable errors other scenarios cause), and
 * a packet waiting at the dump makes it refuse the socket.  In ns and uns
 * the namespace has only this test's traffic.
 *
 * v4: `i4` (IPPROTO_ICMP) bound to 127.0.0.1, connected to 127.0.0.1, with
 * an ICMP_FILTER that lets only echo replies through, IP_TTL 17 and
 * IP_NODEFRAG; `h4` (IPPROTO_RAW, so IP_HDRINCL) unbound; `x4` (protocol
 * 253) with IP_HDRINCL set by hand, shut down for reading and writing.
 * v6: `i6` (IPPROTO_ICMPV6) bound to ::1 with an ICMP6_FILTER that lets only
 * echo replies through; `c6` (protocol 253) connected to ::1 with
 * IPV6_CHECKSUM at offset 2 and IPV6_HDRINCL off.  No packet is queued at the
 * dump.  After restore: every name, peer and option reads back, and an echo
 * request sent from i4 (send: its peer) and from i6 (sendto) comes back to
 * the same socket as an echo reply with the test's id and payload, the
 * request itself held back by the filter.
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/icmp6.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef ICMP_FILTER
#define ICMP_FILTER 1		/* linux/icmp.h, which clashes with glibc's netinet/ip_icmp.h */
#endif
#ifndef IP_NODEFRAG
#define IP_NODEFRAG 22
#endif
#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36
#endif

#define ECHO_ID 0x5a5a

union addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

static socklen_t addr_len(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void loopback(int family, union addr *a)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->in.sin_family = AF_INET;
		a->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_addr = in6addr_loopback;
	}
}

static int raw_socket(int family, int proto, int bind_lo, int connect_lo)
{
	int fd = socket(family, SOCK_RAW, proto);
	union addr a;

	if (fd < 0)
		fail("socket(%d, SOCK_RAW, %d)", family, proto);
	loopback(family, &a);
	if (bind_lo && bind(fd, &a.sa, addr_len(family)))
		fail("bind raw %d", proto);
	if (connect_lo && connect(fd, &a.sa, addr_len(family)))
		fail("connect raw %d", proto);
	return fd;
}

static void set_int(int fd, int level, int opt, int val)
{
	if (setsockopt(fd, level, opt, &val, sizeof(val)))
		fail("setsockopt %d/%d", level, opt);
}

static void want_int(int fd, int level, int opt, int want, const char *who)
{
	int got = test_getsockopt_int(fd, level, opt);

	if (got != want)
		pr_err("%s: option %d/%d is %d, not %d", who, level, opt, got, want);
}

/* getsockname() (and with peer, the peer from the kernel's view: a raw
 * socket's getpeername() says ENOTCONN, so a send() without an address
 * proves it). */
static void want_name(int fd, int family, int bound, const char *who)
{
	union addr got, lo;
	socklen_t l = sizeof(got);
	int any;

	loopback(family, &lo);
	if (getsockname(fd, &got.sa, &l) || got.sa.sa_family != family) {
		pr_err("%s: getsockname", who);
		return;
	}
	any = family == AF_INET ? got.in.sin_addr.s_addr == 0 :
	      !memcmp(&got.in6.sin6_addr, &in6addr_any, 16);
	if (bound && (family == AF_INET ? got.in.sin_addr.s_addr != lo.in.sin_addr.s_addr :
		      memcmp(&got.in6.sin6_addr, &lo.in6.sin6_addr, 16)))
		pr_err("%s: no longer bound to loopback", who);
	if (!bound && !any)
		pr_err("%s: bound, but was not", who);
}

static unsigned short csum(const unsigned char *p, size_t n)
{
	unsigned long sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (n & 1)
		sum += p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* An echo request from fd, and the reply read back from it.  IPv4 raw
 * sockets read the IP header too; ICMPv6 ones do not, and the kernel sums. */
static void echo(int fd, int family, int connected, const char *who)
{
	unsigned char req[16] = { family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST }, rep[128], *icmp = rep;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	union addr to;
	unsigned short sum;
	ssize_t n;

	req[4] = ECHO_ID >> 8;
	req[5] = ECHO_ID & 0xff;
	req[7] = 9;
	memcpy(req + 8, "restored", 8);
	if (family == AF_INET) {
		sum = csum(req, sizeof(req));
		req[2] = sum >> 8;
		req[3] = sum & 0xff;
	}
	loopback(family, &to);
	n = connected ? send(fd, req, sizeof(req), 0) : sendto(fd, req, sizeof(req), 0, &to.sa, addr_len(family));
	if (n != sizeof(req)) {
		pr_err("%s: echo request not sent: %m", who);
		return;
	}
	if (poll(&p, 1, 5000) != 1) {
		pr_err("%s: no echo reply", who);
		return;
	}
	n = recv(fd, rep, sizeof(rep), MSG_DONTWAIT);
	if (family == AF_INET && n >= 20) {
		icmp = rep + 4 * (rep[0] & 0xf);
		n -= icmp - rep;
	}
	if (n != sizeof(req) || icmp[0] != (family == AF_INET ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY) ||
	    ((icmp[4] << 8) | icmp[5]) != ECHO_ID || icmp[7] != 9 || memcmp(icmp + 8, "restored", 8))
		pr_err("%s: a wrong echo reply (%zd bytes, type %d)", who, n, n > 0 ? icmp[0] : -1);
	p.revents = 0;
	if (poll(&p, 1, 100) != 0)
		pr_err("%s: more than the reply came through its filter", who);
}

static void want_filter4(int fd, unsigned int want, const char *who)
{
	unsigned int got = 0;
	socklen_t l = sizeof(got);

	if (getsockopt(fd, SOL_RAW, ICMP_FILTER, &got, &l) || got != want)
		pr_err("%s: ICMP_FILTER is %#x, not %#x", who, got, want);
}

static void want_filter6(int fd, const struct icmp6_filter *want, const char *who)
{
	struct icmp6_filter got;
	socklen_t l = sizeof(got);

	if (getsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &got, &l) || memcmp(&got, want, sizeof(got)))
		pr_err("%s: ICMP6_FILTER differs", who);
}

int main(int argc, char **argv)
{
	unsigned int filter4 = ~(1U << ICMP_ECHOREPLY);
	struct icmp6_filter filter6;
	int i4, h4, x4, i6, c6;
	struct pollfd p;

	test_init(argc, argv);
	test_lo_up();
	i4 = raw_socket(AF_INET, IPPROTO_ICMP, 1, 1);
	if (setsockopt(i4, SOL_RAW, ICMP_FILTER, &filter4, sizeof(filter4)))
		fail("ICMP_FILTER");
	set_int(i4, IPPROTO_IP, IP_TTL, 17);
	set_int(i4, IPPROTO_IP, IP_NODEFRAG, 1);
	h4 = raw_socket(AF_INET, IPPROTO_RAW, 0, 0);
	x4 = raw_socket(AF_INET, 253, 0, 0);
	set_int(x4, IPPROTO_IP, IP_HDRINCL, 1);
	if (shutdown(x4, SHUT_RDWR) && errno != ENOTCONN)
		fail("shutdown");
	i6 = raw_socket(AF_INET6, IPPROTO_ICMPV6, 1, 0);
	ICMP6_FILTER_SETBLOCKALL(&filter6);
	ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter6);
	if (setsockopt(i6, IPPROTO_ICMPV6, ICMP6_FILTER, &filter6, sizeof(filter6)))
		fail("ICMP6_FILTER");
	c6 = raw_socket(AF_INET6, 253, 0, 1);
	set_int(c6, IPPROTO_IPV6, IPV6_CHECKSUM, 2);
	echo(i4, AF_INET, 1, "i4 before");
	echo(i6, AF_INET6, 0, "i6 before");

	test_daemon();
	test_waitsig();

	want_name(i4, AF_INET, 1, "i4");
	want_filter4(i4, filter4, "i4");
	want_int(i4, IPPROTO_IP, IP_TTL, 17, "i4");
	want_int(i4, IPPROTO_IP, IP_NODEFRAG, 1, "i4");
	want_int(i4, IPPROTO_IP, IP_HDRINCL, 0, "i4");
	want_name(h4, AF_INET, 0, "h4");
	want_int(h4, IPPROTO_IP, IP_HDRINCL, 1, "h4");
	want_int(h4, SOL_SOCKET, SO_PROTOCOL, IPPROTO_RAW, "h4");
	want_int(x4, IPPROTO_IP, IP_HDRINCL, 1, "x4");
	want_int(x4, SOL_SOCKET, SO_PROTOCOL, 253, "x4");
	p = (struct pollfd){ .fd = x4, .events = POLLRDHUP };
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLHUP))
		pr_err("x4: not shut down (revents %#x)", p.revents);
	want_name(i6, AF_INET6, 1, "i6");
	want_filter6(i6, &filter6, "i6");
	want_int(c6, IPPROTO_IPV6, IPV6_CHECKSUM, 2, "c6");
	want_int(c6, IPPROTO_IPV6, IPV6_HDRINCL, 0, "c6");
	want_int(c6, SOL_SOCKET, SO_PROTOCOL, 253, "c6");
	if (send(c6, "pong", 4, MSG_DONTWAIT) != 4)   /* only a connected socket sends without an address */
		pr_err("c6: send to its peer: %m");
	echo(i4, AF_INET, 1, "i4");
	echo(i6, AF_INET6, 0, "i6");
	test_result();
	return 0;
}
