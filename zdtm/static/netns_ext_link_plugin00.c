/*
 * netns_ext_link_plugin00: links with their other side outside the test's
 * network namespace, claimed by plugins/ext-link at dump and recreated by its
 * action script (plugins/ext-link/ext-link-action) at setup-namespaces.
 *
 * The harness's private outer namespace (.desc 'outer_netns') has a bridge br1
 * (10.51.0.1/24 and 10.52.0.1/24) and a veth pair low0/low1 with low1 in br1.
 * The test has eth1, a veth whose peer vout1 is outside in br1, and mv0, a
 * macvlan (bridge mode) on low0 moved into the test's namespace; each gets a
 * MAC, an MTU and an address, and a TCP SYN to the bridge through each is
 * answered with a RST.  A dump without the plugin is refused naming eth1.
 * After restore both links have their name, MTU, MAC, state and addresses,
 * and the bridge answers through each of them again.
 */
#include "zdtmtst.h"
#include "znetns.h"

#include <string.h>

static const char *const links[] = { "eth1", "mv0" };
static const char *const peers[] = { "10.51.0.1", "10.52.0.1" };

/* ip -o output without the "INDEX:" that starts each line (the script's ip(8) chose the index anew). */
static void strip_index(const char *in, char *out)
{
	while (*in) {
		const char *colon = strchr(in, ':'), *eol = strchrnul(in, '\n');

		if (colon && colon < eol)
			in = colon + 1;
		while (in < eol)
			*out++ = *in++;
		if (*in)
			*out++ = *in++;
	}
	*out = '\0';
}

int main(int argc, char **argv)
{
	static char addrs0[2][4096], addrs1[4096], s0[4096], s1[4096];
	struct test_link l0[2], l1;
	char nsarg[80];
	int i;

	test_init(argc, argv);
	test_net_no_dad();
	snprintf(nsarg, sizeof(nsarg), "--net=%s", test_outer_netns_path());
	test_ok("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "vout1", "netns", test_outer_netns_path());
	test_ok("nsenter", nsarg, "ip", "link", "set", "vout1", "master", "br1", "up");
	test_ok("nsenter", nsarg, "ip", "link", "add", "link", "low0", "name", "mv0", "type", "macvlan", "mode", "bridge");
	test_ok("nsenter", nsarg, "ip", "link", "set", "mv0", "netns", "1");	/* pid 1: this test */
	test_outer_netns_close();
	test_ok("ip", "link", "set", "eth1", "address", "02:00:00:51:00:02", "mtu", "1400", "up");
	test_ok("ip", "link", "set", "mv0", "address", "02:00:00:52:00:02", "mtu", "1300", "up");
	test_ok("ip", "addr", "add", "10.51.0.2/24", "dev", "eth1");
	test_ok("ip", "addr", "add", "10.52.0.2/24", "dev", "mv0");
	for (i = 0; i < 2; i++) {
		if (test_tcp_answered(peers[i], 9))
			fail("no way out through %s before C/R", links[i]);
		if (test_link_get(links[i], &l0[i]) ||
		    test_capture(addrs0[i], sizeof(addrs0[i]), "ip", "-o", "addr", "show", "dev", links[i], (char *)NULL))
			fail("%s", links[i]);
	}
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], \"says\": \"network link eth1\"}]}\n");

	test_daemon();
	test_waitsig();

	for (i = 0; i < 2; i++) {
		if (test_link_get(links[i], &l1))
			continue;
		if (l0[i].mtu != l1.mtu || memcmp(l0[i].mac, l1.mac, 6) || (l0[i].flags & IFF_UP) != (l1.flags & IFF_UP))
			pr_err("%s: mtu %d flags %#x became mtu %d flags %#x (or its MAC changed)",
			       links[i], l0[i].mtu, l0[i].flags, l1.mtu, l1.flags);
		test_capture(addrs1, sizeof(addrs1), "ip", "-o", "addr", "show", "dev", links[i], (char *)NULL);
		strip_index(addrs0[i], s0);
		strip_index(addrs1, s1);
		if (strcmp(s0, s1))
			pr_err("addresses of %s were\n%s and are\n%s", links[i], addrs0[i], addrs1);
		test_tcp_answered(peers[i], 9);
	}
	test_result();
	return 0;
}
