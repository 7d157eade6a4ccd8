/*
 * netfilter00: the nftables ruleset of the test's network namespace comes
 * back (its firewall: losing it silently would open what it closed).
 *
 * Only where the namespace is the test's own (ns, uns).  nft loads a table
 * `inet zdtm` with a set of blocked ports {7021, 7022}, an input chain that
 * counts and drops UDP to those ports, a named counter, and an ip table
 * (iptables-nft's kind of table) with a chain of its own.  Before the dump
 * one datagram to 7021 is dropped (counted).  After restore: `nft list
 * ruleset` prints what it printed before (the harness compares it too), a
 * datagram to 7022 is still dropped, one to 7023 still arrives, and the
 * drop counter has counted both drops.
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NFT "/usr/sbin/nft"

static const char *ruleset =
	"table inet zdtm {\n"
	"  counter drops { }\n"
	"  set blocked { type inet_service; elements = { 7021, 7022 } }\n"
	"  chain input { type filter hook input priority 0; policy accept;\n"
	"    udp dport @blocked counter name drops drop; }\n"
	"}\n"
	"table ip filter {\n"
	"  chain zdtm_log { ip saddr 10.0.0.0/8 counter return; }\n"
	"}\n";

static char *listing(const char *args)
{
	static char cmd[256];
	char *buf = calloc(1, 65536);
	size_t n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), NFT " %s 2>&1", args);
	p = popen(cmd, "r");
	if (!p || !buf)
		fail("popen nft");
	while (n < 65535 && fgets(buf + n, 65536 - n, p))
		n += strlen(buf + n);
	if (pclose(p))
		pr_err("nft %s failed: %s", args, buf);
	return buf;
}

static int udp_to(int port, int expect)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
	struct pollfd p = { .fd = r, .events = POLLIN };
	int got;

	if (r < 0 || s < 0 || bind(r, (struct sockaddr *)&a, sizeof(a)))
		fail("udp socket for port %d", port);
	if (sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)) != 1)
		pr_err("send to %d", port);
	got = poll(&p, 1, expect ? 3000 : 300) == 1;
	close(r);
	close(s);
	return got;
}

int main(int argc, char **argv)
{
	char *before, *after, *ctr;
	FILE *p;

	test_init(argc, argv);
	test_lo_up();
	p = popen(NFT " -f -", "w");
	if (!p || fputs(ruleset, p) < 0 || pclose(p))
		fail("nft -f");
	if (udp_to(7021, 0))
		fail("the firewall lets 7021 through");
	before = listing("list ruleset");

	test_daemon();
	test_waitsig();

	after = listing("list ruleset");
	if (strcmp(before, after))
		pr_err("the ruleset changed:\n--- before\n%s--- after\n%s", before, after);
	if (udp_to(7022, 0))
		pr_err("the restored firewall lets 7022 through");
	if (!udp_to(7023, 1))
		pr_err("the restored firewall drops 7023");
	ctr = listing("list counter inet zdtm drops");
	if (!strstr(ctr, "packets 2 "))
		pr_err("the drop counter did not count both drops: %s", ctr);
	test_result();
	return 0;
}
