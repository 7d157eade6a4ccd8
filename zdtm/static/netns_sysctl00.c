/*
 * netns_sysctl00: the sysctls of the test's network namespace come back
 * (issue 16): every file under /proc/sys/net that can be set, not a fixed
 * list.  Only where the namespace is the test's own (ns, uns).
 *
 * Before the dump it sets values a container commonly sets (somaxconn,
 * TCP keepalive and buffer sizes, the unprivileged port start, a TCP fast
 * open key, unix datagram queue length) and some per link (lo's IPv6 hop
 * limit, its ARP mode, a neighbour table timer).  After restore each reads
 * back as written; the harness compares every /proc/sys/net value.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name, *value;
} want[] = {
	{ "core/somaxconn", "1234" },
	{ "ipv4/tcp_keepalive_time", "600" },
	{ "ipv4/tcp_keepalive_intvl", "17" },
	{ "ipv4/tcp_fin_timeout", "21" },
	{ "ipv4/tcp_rmem", "4096\t65536\t1000000" },
	{ "ipv4/ip_unprivileged_port_start", "80" },
	{ "ipv4/tcp_fastopen_key", "01234567-89abcdef-fedcba98-76543210" },
	{ "unix/max_dgram_qlen", "77" },
	{ "ipv6/conf/lo/hop_limit", "33" },
	{ "ipv4/conf/lo/arp_ignore", "1" },
	{ "ipv4/neigh/lo/gc_stale_time", "123" },
};

static int put(const char *name, const char *value)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), "/proc/sys/net/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok ? 0 : -1;
}

static char *get(const char *name)
{
	char path[128], *text;

	snprintf(path, sizeof(path), "/proc/sys/net/%s", name);
	if (test_read_file(path, &text) < 0)
		return NULL;
	text[strcspn(text, "\n")] = 0;
	return text;
}

int main(int argc, char **argv)
{
	unsigned i;
	char *v;

	test_init(argc, argv);
	test_lo_up();
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (put(want[i].name, want[i].value))
			fail("set %s", want[i].name);

	test_daemon();
	test_waitsig();

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		v = get(want[i].name);
		if (!v || strcmp(v, want[i].value))
			pr_err("%s is %s, not %s", want[i].name, v ? v : "(unreadable)", want[i].value);
		free(v);
	}
	test_result();
	return 0;
}
