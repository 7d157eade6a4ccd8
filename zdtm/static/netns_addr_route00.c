/*
 * netns_addr_route00: IPv4 and IPv6 addresses, routes and sysctls of the test's
 * network namespace.
 *
 * Two veth pairs (ra/rb, rc/rd), all up.  Addresses: two IPv4 on ra (the second
 * a secondary with label ra:1), one on rb plus a point-to-point one with a peer,
 * IPv6 on ra and rb.  Routes: via a gateway with a metric, link scope,
 * blackhole, unreachable, prohibit, a preferred source, a default route in
 * table 100; IPv6 via a gateway with a metric, a default route, a blackhole.
 * Sysctls: ip_forward on, forwarding off on rb, IPv6 forwarding on (all) and
 * off on rb, IPv6 off on rd, rp_filter 2 on ra, a local port range.  A UDP
 * socket is bound to the IPv6 address of ra and a TCP listener to the
 * secondary IPv4 address (so the addresses must exist before the sockets are
 * restored).  After restore ip's view is the same, the sysctls too, a datagram
 * reaches the UDP socket and the listener accepts a connection.
 */
#include "zdtmtst.h"
#include "znetns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const sysctls[] = {
	"net/ipv4/ip_forward", "net/ipv4/conf/rb/forwarding", "net/ipv4/conf/ra/forwarding",
	"net/ipv6/conf/all/forwarding", "net/ipv6/conf/rb/forwarding", "net/ipv6/conf/rd/disable_ipv6",
	"net/ipv4/conf/ra/rp_filter", "net/ipv4/ip_local_port_range",
};
#define NSYSCTLS (sizeof(sysctls) / sizeof(sysctls[0]))


int main(int argc, char **argv)
{
	static char before[1 << 16], after[1 << 16];
	char v0[NSYSCTLS][64], v1[64];
	struct sockaddr_in6 u6 = { .sin6_family = AF_INET6, .sin6_port = htons(5021) };
	struct sockaddr_in t4 = { .sin_family = AF_INET, .sin_port = htons(7021) };
	int usk, lsk, s, a, one = 1;
	char buf[16];
	unsigned i;

	test_init(argc, argv);
	test_net_no_dad();
	test_ok("ip", "link", "add", "ra", "type", "veth", "peer", "name", "rb");
	test_ok("ip", "link", "add", "rc", "type", "veth", "peer", "name", "rd");
	test_sysctl_set("net/ipv4/ip_forward", "1");
	test_sysctl_set("net/ipv4/conf/rb/forwarding", "0");
	test_sysctl_set("net/ipv6/conf/all/forwarding", "1");
	test_sysctl_set("net/ipv6/conf/rb/forwarding", "0");
	test_sysctl_set("net/ipv6/conf/rd/disable_ipv6", "1");
	test_sysctl_set("net/ipv4/conf/ra/rp_filter", "2");
	test_sysctl_set("net/ipv4/ip_local_port_range", "20000 30000");
	test_ok("ip", "link", "set", "ra", "up");
	test_ok("ip", "link", "set", "rb", "up");
	test_ok("ip", "link", "set", "rc", "up");
	test_ok("ip", "link", "set", "rd", "up");
	test_ok("ip", "addr", "add", "10.21.0.1/24", "dev", "ra");
	test_ok("ip", "addr", "add", "10.21.0.5/24", "dev", "ra", "label", "ra:1");
	test_ok("ip", "addr", "add", "10.22.0.1/24", "dev", "rb");
	test_ok("ip", "addr", "add", "192.168.77.1", "peer", "192.168.77.2/32", "dev", "rb");
	test_ok("ip", "addr", "add", "fd21::1/64", "dev", "ra");
	test_ok("ip", "addr", "add", "fd22::1/64", "dev", "rb");
	test_ok("ip", "route", "add", "10.99.0.0/16", "via", "10.21.0.2", "metric", "50");
	test_ok("ip", "route", "add", "10.98.0.0/16", "dev", "ra", "scope", "link");
	test_ok("ip", "route", "add", "blackhole", "10.97.0.0/16");
	test_ok("ip", "route", "add", "unreachable", "10.96.0.0/16");
	test_ok("ip", "route", "add", "prohibit", "10.95.0.0/16");
	test_ok("ip", "route", "add", "10.94.0.0/16", "via", "10.22.0.2", "src", "10.22.0.1");
	test_ok("ip", "route", "add", "default", "via", "10.21.0.2", "table", "100");
	test_ok("ip", "-6", "route", "add", "fd99::/64", "via", "fd21::2", "metric", "300");
	test_ok("ip", "-6", "route", "add", "default", "via", "fd22::2", "dev", "rb");
	test_ok("ip", "-6", "route", "add", "blackhole", "fd98::/64");

	usk = socket(AF_INET6, SOCK_DGRAM, 0);
	inet_pton(AF_INET6, "fd21::1", &u6.sin6_addr);
	if (usk < 0 || test_bind_addr(usk, (struct sockaddr *)&u6, sizeof(u6)))
		fail("bind UDP to [fd21::1]:5021");
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "10.21.0.5", &t4.sin_addr);
	if (lsk < 0 || setsockopt(lsk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lsk, (struct sockaddr *)&t4, sizeof(t4)) || listen(lsk, 4))
		fail("listen on 10.21.0.5:7021");
	for (i = 0; i < NSYSCTLS; i++)
		test_sysctl_get(sysctls[i], v0[i], sizeof(v0[i]));
	test_net_state(before, sizeof(before));

	test_daemon();
	test_waitsig();

	test_net_state_settled(before, after, sizeof(after));
	for (i = 0; i < NSYSCTLS; i++) {
		test_sysctl_get(sysctls[i], v1, sizeof(v1));
		if (strcmp(v0[i], v1))
			pr_err("%s: '%s' became '%s'", sysctls[i], v0[i], v1);
	}
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	if (s < 0 || sendto(s, "dgram", 5, 0, (struct sockaddr *)&u6, sizeof(u6)) != 5)
		pr_err("send to [fd21::1]:5021");
	else {
		struct pollfd p = { .fd = usk, .events = POLLIN };

		if (poll(&p, 1, 2000) != 1 || recv(usk, buf, sizeof(buf), 0) != 5 || memcmp(buf, "dgram", 5))
			pr_err("the restored UDP socket on [fd21::1]:5021 got nothing");
	}
	close(s);
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&t4, sizeof(t4)))
		pr_err("connect to 10.21.0.5:7021 after restore");
	else if ((a = accept(lsk, NULL, NULL)) < 0)
		pr_err("accept on 10.21.0.5:7021 after restore");
	else
		close(a);
	close(s);
	test_result();
	return 0;
}
