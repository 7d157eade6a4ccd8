/*
 * udp00: UDP sockets, IPv4 and IPv6, bound, connected and unbound.
 *
 * v4: `srv` bound to 127.0.0.1 (SO_RCVBUF set, O_NONBLOCK), `cli` bound and connected to
 * srv; v6: `srv6` bound to ::1 (IPV6_V6ONLY, unicast hops 17), `cli6` connected to it
 * (autobound); `unb` an unbound v4 socket with IP_TTL 33.  Nothing is queued at dump
 * time.  After restore: every local and peer address is the same; datagrams go both ways
 * and arrive from the right sender; options and flags are kept; a connected socket
 * still rejects datagrams from others (they are filtered by its peer address).
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct name {
	struct sockaddr_storage ss;
	socklen_t len;
};

static void name_of(int fd, struct name *n, int peer)
{
	n->len = sizeof(n->ss);
	memset(&n->ss, 0, sizeof(n->ss));
	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&n->ss, &n->len))
		n->len = 0;
}

static void same_name(int fd, struct name *want, int peer, const char *who)
{
	struct name now;

	name_of(fd, &now, peer);
	if (now.len != want->len || memcmp(&now.ss, &want->ss, now.len))
		pr_err("%s: %s address changed", who, peer ? "peer" : "local");
}

/* from -> to (to may be unconnected: sendto), check payload and sender at `to` */
static void roundtrip(int from, int to, struct name *to_name, struct name *from_name, const char *who)
{
	struct sockaddr_storage src;
	socklen_t sl = sizeof(src);
	char buf[64], msg[32];
	ssize_t n;
	int i;

	snprintf(msg, sizeof(msg), "datagram %s", who);
	if (sendto(from, msg, strlen(msg), 0, (struct sockaddr *)&to_name->ss, to_name->len) < 0) {
		pr_err("%s: send", who);
		return;
	}
	for (i = 0; i < 1000; i++) {
		n = recvfrom(to, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&src, &sl);
		if (n >= 0 || errno != EAGAIN)
			break;
		usleep(1000);
	}
	if (n != (ssize_t)strlen(msg) || memcmp(buf, msg, n))
		pr_err("%s: datagram lost or changed", who);
	else if (sl != from_name->len || memcmp(&src, &from_name->ss, sl))
		pr_err("%s: datagram from a different sender", who);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct name nsrv, ncli, ncli_peer, nsrv6, ncli6, ncli6_peer, nunb;
	int one = 1, hops = 17, ttl = 33, rcvbuf = 50000, rcvbuf_got;
	int srv, cli, srv6, cli6, unb, other;
	char buf[16];

	test_init(argc, argv);
	test_lo_up();

	srv = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (srv < 0 || setsockopt(srv, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) ||
	    bind(srv, (struct sockaddr *)&a4, sizeof(a4)))
		fail("srv");
	name_of(srv, &nsrv, 0);
	rcvbuf_got = test_getsockopt_int(srv, SOL_SOCKET, SO_RCVBUF);
	cli = socket(AF_INET, SOCK_DGRAM, 0);
	if (cli < 0 || bind(cli, (struct sockaddr *)&a4, sizeof(a4)) ||
	    connect(cli, (struct sockaddr *)&nsrv.ss, nsrv.len))
		fail("cli");
	name_of(cli, &ncli, 0);
	name_of(cli, &ncli_peer, 1);

	srv6 = socket(AF_INET6, SOCK_DGRAM, 0);
	if (srv6 < 0 || setsockopt(srv6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) ||
	    setsockopt(srv6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops)) ||
	    bind(srv6, (struct sockaddr *)&a6, sizeof(a6)))
		fail("srv6");
	name_of(srv6, &nsrv6, 0);
	cli6 = socket(AF_INET6, SOCK_DGRAM, 0);
	if (cli6 < 0 || connect(cli6, (struct sockaddr *)&nsrv6.ss, nsrv6.len))
		fail("cli6");
	name_of(cli6, &ncli6, 0);
	name_of(cli6, &ncli6_peer, 1);

	unb = socket(AF_INET, SOCK_DGRAM, 0);
	if (unb < 0 || setsockopt(unb, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)))
		fail("unb");
	name_of(unb, &nunb, 0);

	/* a round trip before the dump leaves nothing queued */
	roundtrip(cli, srv, &nsrv, &ncli, "before");

	test_daemon();
	test_waitsig();

	same_name(srv, &nsrv, 0, "srv");
	same_name(cli, &ncli, 0, "cli");
	same_name(cli, &ncli_peer, 1, "cli");
	same_name(srv6, &nsrv6, 0, "srv6");
	same_name(cli6, &ncli6, 0, "cli6");
	same_name(cli6, &ncli6_peer, 1, "cli6");
	same_name(unb, &nunb, 0, "unbound");
	roundtrip(cli, srv, &nsrv, &ncli, "cli->srv");
	roundtrip(srv, cli, &ncli, &nsrv, "srv->cli");
	roundtrip(cli6, srv6, &nsrv6, &ncli6, "cli6->srv6");
	roundtrip(srv6, cli6, &ncli6, &nsrv6, "srv6->cli6");

	/* cli is connected to srv: a datagram from elsewhere must not reach it */
	other = socket(AF_INET, SOCK_DGRAM, 0);
	if (sendto(other, "x", 1, 0, (struct sockaddr *)&ncli.ss, ncli.len) != 1)
		pr_err("sendto cli from another socket");
	usleep(20000);
	if (recv(cli, buf, sizeof(buf), MSG_DONTWAIT) != -1 || errno != EAGAIN)
		pr_err("the connected socket accepted a datagram from a stranger");

	if (!(fcntl(srv, F_GETFL) & O_NONBLOCK) || (fcntl(cli, F_GETFL) & O_NONBLOCK))
		pr_err("O_NONBLOCK changed");
	if (test_getsockopt_int(srv, SOL_SOCKET, SO_RCVBUF) != rcvbuf_got)
		pr_err("SO_RCVBUF %d, expected %d", test_getsockopt_int(srv, SOL_SOCKET, SO_RCVBUF), rcvbuf_got);
	if (test_getsockopt_int(srv6, IPPROTO_IPV6, IPV6_V6ONLY) != 1 || test_getsockopt_int(cli6, IPPROTO_IPV6, IPV6_V6ONLY) != 0)
		pr_err("IPV6_V6ONLY changed");
	if (test_getsockopt_int(srv6, IPPROTO_IPV6, IPV6_UNICAST_HOPS) != hops)
		pr_err("IPV6_UNICAST_HOPS changed");
	if (test_getsockopt_int(unb, IPPROTO_IP, IP_TTL) != ttl)
		pr_err("IP_TTL changed");
	if (test_getsockopt_int(unb, SOL_SOCKET, SO_TYPE) != SOCK_DGRAM)
		pr_err("unbound: wrong type");
	test_result();
	return 0;
}
