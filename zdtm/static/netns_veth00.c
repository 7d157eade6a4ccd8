/*
 * netns_veth00: veth pairs with both ends inside the test's network namespace.
 *
 * Pair va/vb: both up, MTU 1400, chosen MACs, an IPv4 address on each end; pair
 * vc/vd: MTU 9000, vc up and vd down, so vc has no carrier.  After restore the
 * links are the same (ip -o link/addr/route output identical once the kernel
 * has updated the operational states: names, peers, indexes, flags, state,
 * MTU, MAC), index/MTU/MAC/flags seen by ioctl are the
 * same, and an Ethernet frame sent on one end of va/vb arrives on the other,
 * both ways (so they are one pair again, and up).
 */
#include "zdtmtst.h"
#include "znetns.h"

#include <string.h>

static const char *const links[] = { "va", "vb", "vc", "vd" };
#define NLINKS (sizeof(links) / sizeof(links[0]))

int main(int argc, char **argv)
{
	static char before[1 << 16], after[1 << 16];
	struct test_link l0[NLINKS], l1[NLINKS];
	unsigned i;

	test_init(argc, argv);
	test_net_no_dad();
	test_ok("ip", "link", "add", "va", "type", "veth", "peer", "name", "vb");
	test_ok("ip", "link", "set", "va", "address", "02:00:00:0a:0a:01", "mtu", "1400", "up");
	test_ok("ip", "link", "set", "vb", "address", "02:00:00:0a:0b:01", "mtu", "1400", "up");
	test_ok("ip", "addr", "add", "10.11.0.1/24", "dev", "va");
	test_ok("ip", "addr", "add", "10.11.0.2/24", "dev", "vb");
	test_ok("ip", "link", "add", "vc", "mtu", "9000", "type", "veth", "peer", "name", "vd", "mtu", "9000");
	test_ok("ip", "link", "set", "vc", "up");
	if (test_frame_across("va", "vb") || test_frame_across("vb", "va"))
		fail("no frames across va/vb before C/R");
	for (i = 0; i < NLINKS; i++)
		if (test_link_get(links[i], &l0[i]))
			fail("link %s", links[i]);
	test_net_state(before, sizeof(before));

	test_daemon();
	test_waitsig();

	test_net_state_settled(before, after, sizeof(after));
	for (i = 0; i < NLINKS; i++) {
		if (test_link_get(links[i], &l1[i]))
			continue;
		if (l0[i].index != l1[i].index || l0[i].mtu != l1[i].mtu || memcmp(l0[i].mac, l1[i].mac, 6) ||
		    (l0[i].flags & ~IFF_RUNNING) != (l1[i].flags & ~IFF_RUNNING))
			pr_err("%s: index %d mtu %d flags %#x became index %d mtu %d flags %#x (or its MAC changed)",
			       links[i], l0[i].index, l0[i].mtu, l0[i].flags, l1[i].index, l1[i].mtu, l1[i].flags);
	}
	if (l1[3].flags & IFF_UP)
		pr_err("vd is up after restore");
	test_frame_across("va", "vb");
	test_frame_across("vb", "va");
	test_result();
	return 0;
}
