/*
 * ext-link: links of a dumped network namespace whose other side is outside
 * it -- a veth whose peer lives in another namespace (typically the host's end,
 * in a bridge), or a macvlan on a link of another namespace.
 *
 * Dump: DUMP_EXT_LINK(index, type, kind) runs in the dumped namespace.  For a
 * "veth" or "macvlan" link whose peer / lower link is in another namespace
 * (IFLA_LINK_NETNSID), it looks that link up by its nsid (RTM_GETLINK with
 * IFLA_TARGET_NETNSID), and appends one line to ext-link.list in the image
 * directory:
 *
 *     veth NAME PEER BRIDGE        (BRIDGE: the peer's master, or "-")
 *     macvlan NAME LOWER MODE      (MODE: private, vepa, bridge, passthru, source)
 *
 * Anything else is declined with -ENOTSUP.  Restore: refcr calls no hook for
 * links; the companion action script ext-link-action reads ext-link.list at
 * setup-namespaces and creates each link into the restored namespace
 * (CRTOOLS_INIT_PID) with ip(8), the outside end in the script's own network
 * namespace (refcr's), so the peer / lower link is expected there.  refcr then
 * gives the links their MTU, MAC, state, addresses and routes.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "criu-plugin.h"

#define LOG_PREFIX "ext-link: "
#include "criu-log.h"

#define LIST_FILE "ext-link.list"

struct link_info {
	char name[IF_NAMESIZE];
	char kind[32];
	int link;		/* IFLA_LINK: the peer's / lower link's index */
	int link_nsid;		/* IFLA_LINK_NETNSID, -1 if none (same namespace) */
	int master;		/* IFLA_MASTER, 0 if none */
	unsigned macvlan_mode;	/* IFLA_MACVLAN_MODE */
};

static void parse_info(struct rtattr *nest, struct link_info *li)
{
	int len = RTA_PAYLOAD(nest);
	struct rtattr *a;

	for (a = RTA_DATA(nest); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == IFLA_INFO_KIND)
			snprintf(li->kind, sizeof(li->kind), "%.*s", (int)RTA_PAYLOAD(a), (char *)RTA_DATA(a));
		else if (a->rta_type == IFLA_INFO_DATA && !strcmp(li->kind, "macvlan")) {
			int dlen = RTA_PAYLOAD(a);
			struct rtattr *d;

			for (d = RTA_DATA(a); RTA_OK(d, dlen); d = RTA_NEXT(d, dlen))
				if (d->rta_type == IFLA_MACVLAN_MODE)
					li->macvlan_mode = *(unsigned *)RTA_DATA(d);
		}
	}
}

/* RTM_GETLINK of index in this namespace (nsid < 0) or in the one with that nsid. */
static int get_link(int index, int nsid, struct link_info *li)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
		char attrs[64];
	} req;
	char buf[16384];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	struct rtattr *a;
	int fd, len, ret = -EIO;

	memset(li, 0, sizeof(*li));
	li->link_nsid = -1;
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = NLMSG_LENGTH(sizeof(req.i));
	req.h.nlmsg_type = RTM_GETLINK;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.i.ifi_family = AF_UNSPEC;
	req.i.ifi_index = index;
	if (nsid >= 0) {
		a = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.h.nlmsg_len));
		a->rta_type = IFLA_TARGET_NETNSID;
		a->rta_len = RTA_LENGTH(sizeof(int));
		memcpy(RTA_DATA(a), &nsid, sizeof(int));
		req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_ALIGN(a->rta_len);
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (send(fd, &req, req.h.nlmsg_len, 0) < 0) {
		ret = -errno;
		goto out;
	}
	len = recv(fd, buf, sizeof(buf), 0);
	if (len < 0) {
		ret = -errno;
		goto out;
	}
	if (!NLMSG_OK(h, (unsigned)len))
		goto out;
	if (h->nlmsg_type == NLMSG_ERROR) {
		ret = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
		goto out;
	}
	if (h->nlmsg_type != RTM_NEWLINK)
		goto out;
	len = IFLA_PAYLOAD(h);
	for (a = IFLA_RTA(NLMSG_DATA(h)); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		switch (a->rta_type) {
		case IFLA_IFNAME:
			snprintf(li->name, sizeof(li->name), "%s", (char *)RTA_DATA(a));
			break;
		case IFLA_LINK:
			li->link = *(int *)RTA_DATA(a);
			break;
		case IFLA_LINK_NETNSID:
			li->link_nsid = *(int *)RTA_DATA(a);
			break;
		case IFLA_MASTER:
			li->master = *(int *)RTA_DATA(a);
			break;
		case IFLA_LINKINFO:
			parse_info(a, li);
			break;
		}
	}
	ret = li->name[0] ? 0 : -EIO;
out:
	close(fd);
	return ret;
}

static const char *mode_name(unsigned mode)
{
	switch (mode) {
	case MACVLAN_MODE_PRIVATE: return "private";
	case MACVLAN_MODE_VEPA: return "vepa";
	case MACVLAN_MODE_BRIDGE: return "bridge";
	case MACVLAN_MODE_PASSTHRU: return "passthru";
	case MACVLAN_MODE_SOURCE: return "source";
	}
	return NULL;
}

static int record(const char *line)
{
	int fd = openat(criu_get_image_dir(), LIST_FILE, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0) {
		pr_perror("cannot open %s in the image directory", LIST_FILE);
		return -errno;
	}
	n = write(fd, line, strlen(line));
	close(fd);
	if (n != (ssize_t)strlen(line)) {
		pr_err("cannot write %s\n", LIST_FILE);
		return -EIO;
	}
	return 0;
}

static int dump_ext_link(int index, int type, char *kind)
{
	struct link_info li, peer, br;
	char line[128];
	const char *mode;
	int ret;

	if (!kind || (strcmp(kind, "veth") && strcmp(kind, "macvlan")))
		return -ENOTSUP;
	if (get_link(index, -1, &li) || li.link_nsid < 0 || !li.link)
		return -ENOTSUP;		/* not ours, or its other side is inside */
	ret = get_link(li.link, li.link_nsid, &peer);
	if (ret) {
		pr_err("%s: cannot look up its %s link %d (nsid %d): %s\n", li.name,
		       strcmp(kind, "veth") ? "lower" : "peer", li.link, li.link_nsid, strerror(-ret));
		return ret;
	}
	if (!strcmp(kind, "veth")) {
		strcpy(br.name, "-");
		if (peer.master && get_link(peer.master, li.link_nsid, &br)) {
			pr_err("%s: cannot look up the master %d of its peer %s\n", li.name, peer.master, peer.name);
			return -EIO;
		}
		snprintf(line, sizeof(line), "veth %s %s %s\n", li.name, peer.name, br.name);
	} else {
		mode = mode_name(li.macvlan_mode);
		if (!mode) {
			pr_err("%s: unknown macvlan mode %u\n", li.name, li.macvlan_mode);
			return -EINVAL;
		}
		snprintf(line, sizeof(line), "macvlan %s %s %s\n", li.name, peer.name, mode);
	}
	ret = record(line);
	if (ret == 0)
		pr_info("link %d (%s): %s", index, kind, line);
	return ret;
}

CR_PLUGIN_REGISTER_DUMMY("ext-link")
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_EXT_LINK, dump_ext_link)
