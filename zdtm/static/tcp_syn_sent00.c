/*
 * tcp_syn_sent00: a TCP connect() in progress (SYN_SENT) comes back and
 * completes (issue 16).
 *
 * Only in a network namespace of the test's own (ns, uns): it adds a route
 * and an address.  10.9.9.0/24 is routed to lo but no address of it is
 * local, so a SYN to 10.9.9.9 loops back and is dropped: `c` (non-blocking,
 * bound to 127.0.0.1 port 7011 with SO_REUSEADDR) stays in SYN_SENT,
 * retransmitting.  After restore: still SYN_SENT, bound as before; then
 * 10.9.9.9 is made local with a listener on port 7012, and the next SYN
 * (the restored socket's) completes the handshake: `c` becomes writable
 * with no error, the accepted connection's peer is `c`'s address, and
 * bytes flow both ways.
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define DST "10.9.9.9"
#define DPORT 7012
#define SPORT 7011

static struct sockaddr_in addr(const char *ip, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static void route_to_lo(void)
{
	struct rtentry rt;
	struct sockaddr_in dst = addr("10.9.9.0", 0), mask = addr("255.255.255.0", 0);
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&rt, 0, sizeof(rt));
	memcpy(&rt.rt_dst, &dst, sizeof(dst));
	memcpy(&rt.rt_genmask, &mask, sizeof(mask));
	rt.rt_flags = RTF_UP;
	rt.rt_dev = "lo";
	if (s < 0 || ioctl(s, SIOCADDRT, &rt))
		fail("route 10.9.9.0/24 to lo");
	close(s);
}

static void add_local_address(void)
{
	struct ifreq ifr;
	struct sockaddr_in a = addr(DST, 0), mask = addr("255.255.255.255", 0);
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo:9");
	memcpy(&ifr.ifr_addr, &a, sizeof(a));
	if (s < 0 || ioctl(s, SIOCSIFADDR, &ifr))
		pr_err("add %s to lo: %m", DST);
	memcpy(&ifr.ifr_netmask, &mask, sizeof(mask));
	if (ioctl(s, SIOCSIFNETMASK, &ifr))
		pr_err("netmask of %s: %m", DST);
	close(s);
}

int main(int argc, char **argv)
{
	struct sockaddr_in src = addr("127.0.0.1", SPORT), dst = addr(DST, DPORT), got, peer;
	socklen_t l = sizeof(got);
	int c, lsk, a, one = 1, err = -1;
	struct pollfd p;
	char buf[8];

	test_init(argc, argv);
	test_lo_up();
	route_to_lo();
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c < 0 || setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(c, (struct sockaddr *)&src, sizeof(src)))
		fail("bind");
	if (connect(c, (struct sockaddr *)&dst, sizeof(dst)) == 0 || errno != EINPROGRESS)
		fail("connect did not stay in progress");
	if (test_tcp_state(c) != TCP_SYN_SENT)
		fail("not in SYN_SENT but %d", test_tcp_state(c));

	test_daemon();
	test_waitsig();

	if (test_tcp_state(c) != TCP_SYN_SENT)
		pr_err("state %d after restore, not SYN_SENT", test_tcp_state(c));
	if (getsockname(c, (struct sockaddr *)&got, &l) || got.sin_port != htons(SPORT) ||
	    got.sin_addr.s_addr != src.sin_addr.s_addr)
		pr_err("no longer bound to 127.0.0.1:%d", SPORT);
	if (test_getsockopt_int(c, SOL_SOCKET, SO_REUSEADDR) != 1)
		pr_err("SO_REUSEADDR lost");
	add_local_address();
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	if (lsk < 0 || bind(lsk, (struct sockaddr *)&dst, sizeof(dst)) || listen(lsk, 4))
		fail("listener on %s:%d", DST, DPORT);
	p = (struct pollfd){ .fd = c, .events = POLLOUT };
	l = sizeof(err);
	if (poll(&p, 1, 20000) != 1 || getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &l) || err) {
		pr_err("the connection did not complete (revents %#x, error %d)", p.revents, err);
		test_result();
		return 0;
	}
	l = sizeof(peer);
	a = accept(lsk, (struct sockaddr *)&peer, &l);
	if (a < 0 || peer.sin_port != htons(SPORT) || peer.sin_addr.s_addr != src.sin_addr.s_addr)
		pr_err("the accepted connection is not from 127.0.0.1:%d", SPORT);
	if (a >= 0 && (write(c, "ping", 4) != 4 || read(a, buf, 4) != 4 || memcmp(buf, "ping", 4) ||
		       write(a, "pong", 4) != 4))
		pr_err("no data from the restored connection");
	p = (struct pollfd){ .fd = c, .events = POLLIN };
	if (a >= 0 && (poll(&p, 1, 5000) != 1 || read(c, buf, 4) != 4 || memcmp(buf, "pong", 4)))
		pr_err("no data to the restored connection");
	test_result();
	return 0;
}
