/*
 * netns_ext_veth_option00: a veth whose peer is outside the test's network
 * namespace, given back by --external veth[eth0]:vout0@br0 at restore.
 *
 * The harness's private outer namespace (.desc 'outer_netns') has a bridge br0
 * with 10.41.0.1/24.  The test creates eth0 with its peer vout0 in that
 * namespace, puts vout0 into br0, gives eth0 a MAC, MTU 1450 and 10.41.0.2/24,
 * and checks that a TCP SYN to 10.41.0.1 is answered (a RST: ECONNREFUSED).
 * Refused (cr-opts.json): a dump without the option (naming the link), a
 * restore without the option (naming what to give).  After restore eth0 has
 * its index, MAC, MTU, flags and address, and the outside still answers
 * through the recreated pair and the bridge.
 */
#include "zdtmtst.h"
#include "znetns.h"

#include <string.h>

int main(int argc, char **argv)
{
	static char addrs0[4096], addrs1[4096];
	struct test_link l0, l1;
	char nsarg[80];

	test_init(argc, argv);
	test_net_no_dad();
	snprintf(nsarg, sizeof(nsarg), "--net=%s", test_outer_netns_path());
	test_ok("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "vout0", "netns", test_outer_netns_path());
	test_ok("nsenter", nsarg, "ip", "link", "set", "vout0", "master", "br0", "up");
	test_outer_netns_close();
	test_ok("ip", "link", "set", "eth0", "address", "02:00:00:41:00:02", "mtu", "1450", "up");
	test_ok("ip", "addr", "add", "10.41.0.2/24", "dev", "eth0");
	if (test_tcp_answered("10.41.0.1", 9))
		fail("no way out before C/R");
	test_write_text("cr-opts.json", "{\"refuse\": ["
			"{\"step\": \"dump\", \"opts\": [], \"says\": \"network link eth0\"}, "
			"{\"step\": \"restore\", \"opts\": [], \"says\": \"--external veth[eth0]:OUTNAME\"}]}\n");
	if (test_link_get("eth0", &l0) || test_capture(addrs0, sizeof(addrs0), "ip", "-o", "addr", "show", "dev", "eth0", (char *)NULL))
		fail("eth0");

	test_daemon();
	test_waitsig();

	if (test_link_get("eth0", &l1) == 0 &&
	    (l0.index != l1.index || l0.mtu != l1.mtu || memcmp(l0.mac, l1.mac, 6) ||
	     (l0.flags & IFF_UP) != (l1.flags & IFF_UP)))
		pr_err("eth0: index %d mtu %d flags %#x became index %d mtu %d flags %#x (or its MAC changed)",
		       l0.index, l0.mtu, l0.flags, l1.index, l1.mtu, l1.flags);
	test_capture(addrs1, sizeof(addrs1), "ip", "-o", "addr", "show", "dev", "eth0", (char *)NULL);
	if (strcmp(addrs0, addrs1))
		pr_err("addresses of eth0 were\n%s and are\n%s", addrs0, addrs1);
	test_tcp_answered("10.41.0.1", 9);
	test_result();
	return 0;
}
