/*
 * packet00: packet sockets (AF_PACKET) come back (issue 16).
 *
 * `raw` (SOCK_RAW) bound to lo for ethertype 0x88b5, with a multicast membership
 * added twice, PACKET_AUXDATA, PACKET_VERSION TPACKET_V2 and PACKET_TIMESTAMP;
 * `vnet` (SOCK_RAW, unbound, protocol 0) with PACKET_VNET_HDR and
 * PACKET_IGNORE_OUTGOING; `dg` (SOCK_DGRAM) for 0x88b6 on every device, with
 * PACKET_ORIGDEV; `fan1` and `fan2` bound to lo for 0x88b7 in fanout group 4242
 * (PACKET_FANOUT_HASH).  Only private ethertypes: nothing else arrives
 * while the tree is dumped, in the h flavor either.  After restore: names
 * (device, protocol), options and fanout read back, the membership is on lo's
 * multicast list, and a frame sent on lo for each ethertype arrives: on raw
 * with its ethernet header, on dg with the sender's link address, on one of
 * the fanout pair.  The harness compares the memberships with their counts
 * (packet_diag).
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const unsigned char mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };

static int packet_socket(int type, int proto, int bind_lo)
{
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(proto),
				  .sll_ifindex = (int)if_nametoindex("lo") };
	int fd = socket(AF_PACKET, type, bind_lo ? 0 : htons(proto));

	if (fd < 0 || (bind_lo && bind(fd, (struct sockaddr *)&ll, sizeof(ll))))
		fail("packet socket for %#x", proto);
	return fd;
}

static void set_opt(int fd, int opt, int val)
{
	if (setsockopt(fd, SOL_PACKET, opt, &val, sizeof(val)))
		fail("SOL_PACKET option %d", opt);
}

static void want_opt(int fd, int opt, int want, const char *who)
{
	int got = test_getsockopt_int(fd, SOL_PACKET, opt);

	if (got != want)
		pr_err("%s: SOL_PACKET option %d is %d, not %d", who, opt, got, want);
}

static void want_name(int fd, int proto, int on_lo, const char *who)
{
	struct sockaddr_ll ll;
	socklen_t l = sizeof(ll);

	memset(&ll, 0, sizeof(ll));
	if (getsockname(fd, (struct sockaddr *)&ll, &l) || ll.sll_protocol != htons(proto) ||
	    ll.sll_ifindex != (on_lo ? (int)if_nametoindex("lo") : 0))
		pr_err("%s: bound to protocol %#x device %d", who, ntohs(ll.sll_protocol), ll.sll_ifindex);
}

/* A frame for ethertype proto on lo (to the multicast address), from a new socket. */
static void send_frame(int proto, const char *payload)
{
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex("lo"), .sll_halen = 6 };
	unsigned char frame[64] = { 0 };
	int fd = socket(AF_PACKET, SOCK_RAW, 0);
	size_t n = 14 + strlen(payload);

	memcpy(frame, mcast, 6);
	frame[12] = proto >> 8;
	frame[13] = proto & 0xff;
	memcpy(frame + 14, payload, strlen(payload));
	if (fd < 0 || sendto(fd, frame, n, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)n)
		pr_err("sending a frame for %#x", proto);
	close(fd);
}

/* What arrives on fd within a second ("" if nothing), past `skip` header bytes. */
static int got_frame(int fd, const char *payload, size_t skip)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	unsigned char buf[128];
	ssize_t n;

	if (poll(&p, 1, 1000) != 1)
		return 0;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	return n == (ssize_t)(skip + strlen(payload)) && !memcmp(buf + skip, payload, strlen(payload));
}

static int on_lo_mc_list(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/net/dev_mcast", "r");
	int found = 0;

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, " lo ") && strstr(line, "01005e0000fb"))
			found = 1;
	if (f)
		fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	struct packet_mreq mr = { .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6 };
	int raw, vnet, dg, fan1, fan2, fanout = 4242 | (PACKET_FANOUT_HASH << 16);

	test_init(argc, argv);
	test_lo_up();
	raw = packet_socket(SOCK_RAW, 0x88b5, 1);
	mr.mr_ifindex = (int)if_nametoindex("lo");
	memcpy(mr.mr_address, mcast, 6);
	if (setsockopt(raw, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) ||
	    setsockopt(raw, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)))
		fail("PACKET_ADD_MEMBERSHIP");
	set_opt(raw, PACKET_AUXDATA, 1);
	set_opt(raw, PACKET_VERSION, TPACKET_V2);
	set_opt(raw, PACKET_TIMESTAMP, 1);
	vnet = socket(AF_PACKET, SOCK_RAW, 0);
	if (vnet < 0)
		fail("vnet socket");
	set_opt(vnet, PACKET_VNET_HDR, 1);
	set_opt(vnet, PACKET_IGNORE_OUTGOING, 1);
	dg = packet_socket(SOCK_DGRAM, 0x88b6, 0);
	set_opt(dg, PACKET_ORIGDEV, 1);
	fan1 = packet_socket(SOCK_RAW, 0x88b7, 1);
	fan2 = packet_socket(SOCK_RAW, 0x88b7, 1);
	set_opt(fan1, PACKET_FANOUT, fanout);
	set_opt(fan2, PACKET_FANOUT, fanout);
	if (!on_lo_mc_list())
		fail("the membership is not on lo's multicast list");

	test_daemon();
	test_waitsig();

	want_name(raw, 0x88b5, 1, "raw");
	want_name(dg, 0x88b6, 0, "dg");
	want_name(fan1, 0x88b7, 1, "fan1");
	want_name(fan2, 0x88b7, 1, "fan2");
	want_opt(raw, PACKET_AUXDATA, 1, "raw");
	want_opt(raw, PACKET_VERSION, TPACKET_V2, "raw");
	want_opt(raw, PACKET_TIMESTAMP, 1, "raw");
	want_opt(vnet, PACKET_VNET_HDR, 1, "vnet");
	want_opt(vnet, PACKET_IGNORE_OUTGOING, 1, "vnet");
	want_opt(dg, PACKET_ORIGDEV, 1, "dg");
	want_opt(fan1, PACKET_FANOUT, fanout, "fan1");
	want_opt(fan2, PACKET_FANOUT, fanout, "fan2");
	if (!on_lo_mc_list())
		pr_err("the membership is no longer on lo's multicast list");
	send_frame(0x88b5, "to raw");
	if (!got_frame(raw, "to raw", 14))
		pr_err("raw: the frame did not arrive");
	send_frame(0x88b6, "to dg");
	if (!got_frame(dg, "to dg", 0))
		pr_err("dg: the frame did not arrive");
	send_frame(0x88b7, "to the fanout group");
	if (got_frame(fan1, "to the fanout group", 14) + got_frame(fan2, "to the fanout group", 14) != 1)
		pr_err("the fanout group did not take the frame exactly once");
	test_result();
	return 0;
}
