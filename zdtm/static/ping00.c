/*
 * ping00: ICMP echo ("ping") datagram sockets come back (issue 16).
 *
 * Only in the ns flavor: creating a ping socket needs net.ipv4.ping_group_range
 * to admit root, which the host namespace here does not ("1 0": EACCES), and the
 * h flavor must not change the host's sysctl.  The scenario sets the range in
 * its own network namespace (a namespaced sysctl, restored with the namespace).
 *
 * v4: `b4` bound to 127.0.0.1 with echo id 4242 and IP_TTL 33; `c4` bound to id
 * 4343 and connected to 127.0.0.1; `s4` connected to 127.0.0.1, bound to id 4444
 * and shut down for reading.  v6: `b6` bound to ::1 with id 4545 and
 * IPV6_UNICAST_HOPS 44 and IPV6_RECVERR.  Every echo reply was read before the
 * dump.  After restore: each getsockname() shows the same address and id, the
 * options read back, the shut-down one shows POLLRDHUP, and an echo request sent
 * from each (sendto for the bound ones, send for the connected one) comes back as
 * a reply with the socket's id and the same payload.
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/icmp6.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

union addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

static socklen_t addr_len(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void loopback(int family, int id, union addr *a)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->in.sin_family = AF_INET;
		a->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->in.sin_port = htons(id);
	} else {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_addr = in6addr_loopback;
		a->in6.sin6_port = htons(id);
	}
}

static int ping_socket(int family, int id)
{
	union addr a;
	int fd = socket(family, SOCK_DGRAM, family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);

	loopback(family, id, &a);
	if (fd < 0 || bind(fd, &a.sa, addr_len(family)))
		fail("ping socket (id %d)", id);
	return fd;
}

static void check_name(int fd, int family, int id, const char *who)
{
	union addr got;
	socklen_t l = sizeof(got);
	int port;

	if (getsockname(fd, &got.sa, &l)) {
		pr_err("%s: getsockname", who);
		return;
	}
	port = ntohs(family == AF_INET ? got.in.sin_port : got.in6.sin6_port);
	if (got.sa.sa_family != family || port != id)
		pr_err("%s: bound to family %d id %d, not %d id %d", who, got.sa.sa_family, port, family, id);
	if (family == AF_INET ? got.in.sin_addr.s_addr != htonl(INADDR_LOOPBACK) :
	    memcmp(&got.in6.sin6_addr, &in6addr_loopback, 16))
		pr_err("%s: no longer bound to loopback", who);
}

/* An echo request from fd (to loopback, or to its peer), and its reply. */
static void echo(int fd, int family, int id, int connected, const char *who)
{
	unsigned char req[16] = { family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST }, rep[64];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	union addr to;
	ssize_t n;

	memcpy(req + 8, "restored", 8);
	req[7] = 7;                                     /* sequence 7; id and checksum: the kernel's */
	loopback(family, 0, &to);
	n = connected ? send(fd, req, sizeof(req), 0) : sendto(fd, req, sizeof(req), 0, &to.sa, addr_len(family));
	if (n != sizeof(req)) {
		pr_err("%s: echo request not sent", who);
		return;
	}
	if (poll(&p, 1, 5000) != 1) {
		pr_err("%s: no echo reply", who);
		return;
	}
	n = recv(fd, rep, sizeof(rep), MSG_DONTWAIT);
	if (n != sizeof(req) || rep[0] != (family == AF_INET ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY) ||
	    ((rep[4] << 8) | rep[5]) != id || rep[7] != 7 || memcmp(rep + 8, "restored", 8))
		pr_err("%s: a wrong echo reply (%zd bytes, type %d, id %d)", who, n, n > 0 ? rep[0] : -1,
		       n > 5 ? (rep[4] << 8) | rep[5] : -1);
}

static void connect_lo(int fd, int family)
{
	union addr a;

	loopback(family, 0, &a);
	if (connect(fd, &a.sa, addr_len(family)))
		fail("connect");
}

static void want_opt(int fd, int level, int opt, int want, const char *who)
{
	int got = test_getsockopt_int(fd, level, opt);

	if (got != want)
		pr_err("%s: option %d/%d is %d, not %d", who, level, opt, got, want);
}

int main(int argc, char **argv)
{
	int b4, c4, s4, b6, ttl = 33, hops = 44, one = 1;
	struct pollfd p;

	test_init(argc, argv);
	test_write_text("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
	test_lo_up();
	b4 = ping_socket(AF_INET, 4242);
	if (setsockopt(b4, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)))
		fail("IP_TTL");
	c4 = ping_socket(AF_INET, 4343);
	connect_lo(c4, AF_INET);
	s4 = ping_socket(AF_INET, 4444);
	connect_lo(s4, AF_INET);
	if (shutdown(s4, SHUT_RD))
		fail("shutdown");
	b6 = ping_socket(AF_INET6, 4545);
	if (setsockopt(b6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops)) ||
	    setsockopt(b6, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one)))
		fail("ipv6 options");
	echo(b4, AF_INET, 4242, 0, "b4 before");
	echo(c4, AF_INET, 4343, 1, "c4 before");
	echo(b6, AF_INET6, 4545, 0, "b6 before");

	test_daemon();
	test_waitsig();

	check_name(b4, AF_INET, 4242, "b4");
	check_name(c4, AF_INET, 4343, "c4");
	check_name(s4, AF_INET, 4444, "s4");
	check_name(b6, AF_INET6, 4545, "b6");
	want_opt(b4, IPPROTO_IP, IP_TTL, 33, "b4");
	want_opt(b6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 44, "b6");
	want_opt(b6, IPPROTO_IPV6, IPV6_RECVERR, 1, "b6");
	p = (struct pollfd){ .fd = s4, .events = POLLRDHUP };
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLRDHUP))
		pr_err("s4: reading is no longer shut down");
	echo(b4, AF_INET, 4242, 0, "b4");
	echo(c4, AF_INET, 4343, 1, "c4");
	echo(b6, AF_INET6, 4545, 0, "b6");
	test_result();
}
