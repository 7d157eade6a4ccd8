/*
 * netlink00: netlink sockets with their port ids, groups and options.
 *
 * r1: NETLINK_ROUTE bound with groups RTMGRP_LINK | RTMGRP_IPV4_IFADDR (in h,
 * where the host's events would queue up: the quiet multicast-routing groups)
 * by bind() and group 33 (above the bind mask) by NETLINK_ADD_MEMBERSHIP, with
 * NETLINK_EXT_ACK and NETLINK_NO_ENOBUFS; r2: NETLINK_ROUTE never bound;
 * g: NETLINK_GENERIC autobound by a CTRL_CMD_GETFAMILY request (its reply
 * read).  After restore: the same port ids (getsockname), memberships
 * (NETLINK_LIST_MEMBERSHIPS) and options; g's port still gets the kernel's
 * reply to a new request; in the ns flavor (its own net namespace) an address
 * added to lo is announced to r1 (its RTMGRP_IPV4_IFADDR subscription works).
 */
#include "zdtmtst.h"

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

struct state {
	struct sockaddr_nl a;
	unsigned int groups[4];
	int ext_ack, no_enobufs;
};

static void get_state(int fd, struct state *s)
{
	socklen_t len = sizeof(s->a);

	memset(s, 0, sizeof(*s));
	if (getsockname(fd, (struct sockaddr *)&s->a, &len))
		fail("getsockname");
	len = sizeof(s->groups);
	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, s->groups, &len))
		fail("NETLINK_LIST_MEMBERSHIPS");
	len = sizeof(int);
	getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &s->ext_ack, &len);
	len = sizeof(int);
	getsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &s->no_enobufs, &len);
}

static void same_state(int fd, const struct state *before, const char *what)
{
	struct state now;

	get_state(fd, &now);
	if (now.a.nl_pid != before->a.nl_pid || now.a.nl_groups != before->a.nl_groups)
		pr_err("%s: port %u groups %#x, was port %u groups %#x", what, now.a.nl_pid, now.a.nl_groups,
		       before->a.nl_pid, before->a.nl_groups);
	if (memcmp(now.groups, before->groups, sizeof(now.groups)))
		pr_err("%s: memberships %#x %#x, were %#x %#x", what, now.groups[0], now.groups[1],
		       before->groups[0], before->groups[1]);
	if (now.ext_ack != before->ext_ack || now.no_enobufs != before->no_enobufs)
		pr_err("%s: NETLINK_EXT_ACK %d NO_ENOBUFS %d, were %d %d", what, now.ext_ack, now.no_enobufs,
		       before->ext_ack, before->no_enobufs);
}

/* a CTRL_CMD_GETFAMILY request for "nlctrl"; 0 if the kernel answers to our port */
static int ask_family(int g, unsigned int port)
{
	struct {
		struct nlmsghdr h;
		struct genlmsghdr gh;
		struct nlattr at;
		char name[8];
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = GENL_ID_CTRL, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 7 },
		.gh = { .cmd = CTRL_CMD_GETFAMILY, .version = 1 },
		.at = { .nla_len = NLA_HDRLEN + 7, .nla_type = CTRL_ATTR_FAMILY_NAME },
		.name = "nlctrl",
	};
	char buf[8192];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	ssize_t n;

	if (send(g, &req, sizeof(req), 0) != sizeof(req))
		return -1;
	n = recv(g, buf, sizeof(buf), 0);
	if (n < (ssize_t)sizeof(*h) || h->nlmsg_type != GENL_ID_CTRL || h->nlmsg_seq != 7)
		return -2;
	if (port && h->nlmsg_pid != port)
		return -3;
	return 0;
}

static int announced(int r1)
{
	char buf[8192];
	struct pollfd p = { .fd = r1, .events = POLLIN };
	int i;

	for (i = 0; i < 20; i++) {
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(r1, buf, sizeof(buf), MSG_DONTWAIT);
		for (; n > 0 && NLMSG_OK(h, n); h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == RTM_NEWADDR)
				return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR };
	int r1, r2, g, one = 1, grp = 33;
	struct state s1, s2, sg;

	test_init(argc, argv);
	if (getpid() != 1)	/* h: the host's events would queue up in r1 (the dump refuses that) */
		a.nl_groups = RTMGRP_IPV4_MROUTE | RTMGRP_IPV6_MROUTE;
	r1 = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	r2 = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
	g = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
	if (r1 < 0 || r2 < 0 || g < 0)
		fail("socket");
	if (bind(r1, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(r1, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) ||
	    setsockopt(r1, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)) ||
	    setsockopt(r1, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one)))
		fail("set up r1");
	if (ask_family(g, 0))
		fail("CTRL_CMD_GETFAMILY");
	get_state(r1, &s1);
	get_state(r2, &s2);
	get_state(g, &sg);
	if (!s1.a.nl_pid || !sg.a.nl_pid || s2.a.nl_pid || !(s1.groups[1] & 1))
		fail("unexpected set-up: r1 %u g %u r2 %u groups %#x", s1.a.nl_pid, sg.a.nl_pid, s2.a.nl_pid, s1.groups[1]);

	test_daemon();
	test_waitsig();

	same_state(r1, &s1, "r1");
	same_state(r2, &s2, "r2");
	same_state(g, &sg, "g");
	if (ask_family(g, sg.a.nl_pid))
		pr_err("g: no reply to its port %u", sg.a.nl_pid);
	if (getpid() == 1) {
		if (system("ip addr add 10.9.9.9/32 dev lo"))
			pr_err("ip addr add");
		else if (!announced(r1))
			pr_err("r1: the new address was not announced");
	}
	test_result();
	return 0;
}
