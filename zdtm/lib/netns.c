/* Helpers for the network namespace scenarios: see znetns.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"
#include "znetns.h"

#define MAX_ARGS 64
#define ETH_P_ZDTM 0x88b5

static int collect_args(const char **argv, const char *arg0, va_list ap)
{
	int n = 0;

	argv[n++] = arg0;
	while (n < MAX_ARGS - 1 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	argv[n] = NULL;
	return n;
}

static int spawn(const char **argv, int out_fd)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		pr_err("fork for %s", argv[0]);
		return -1;
	}
	if (pid == 0) {
		if (out_fd >= 0)
			dup2(out_fd, 1);
		execvp(argv[0], (char **)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			pr_err("waitpid %s", argv[0]);
			return -1;
		}
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int test_run(const char *arg0, ...)
{
	const char *argv[MAX_ARGS];
	va_list ap;

	va_start(ap, arg0);
	collect_args(argv, arg0, ap);
	va_end(ap);
	return spawn(argv, -1);
}

int test_capture(char *buf, size_t len, const char *arg0, ...)
{
	const char *argv[MAX_ARGS];
	char path[] = "/tmp/zdtm-capture-XXXXXX";
	va_list ap;
	int fd, ret;
	ssize_t n;

	va_start(ap, arg0);
	collect_args(argv, arg0, ap);
	va_end(ap);
	fd = mkstemp(path);
	if (fd < 0) {
		pr_err("mkstemp");
		return -1;
	}
	unlink(path);
	ret = spawn(argv, fd);
	n = pread(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return ret;
}

static int outer_fd = -1;

int test_outer_netns_fd(void)
{
	const char *s = getenv("ZDTM_OUTER_NETNS_FD");

	if (outer_fd >= 0)
		return outer_fd;
	if (!s || !*s)
		fail("no ZDTM_OUTER_NETNS_FD: the .desc needs 'outer_netns'");
	outer_fd = atoi(s);
	if (fcntl(outer_fd, F_GETFD) < 0)
		fail("ZDTM_OUTER_NETNS_FD %d is not open", outer_fd);
	return outer_fd;
}

const char *test_outer_netns_path(void)
{
	static char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", test_outer_netns_fd());
	return path;
}

void test_outer_netns_close(void)
{
	if (outer_fd >= 0)
		close(outer_fd);
	outer_fd = -1;
}

int test_link_get(const char *name, struct test_link *l)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM, 0), ret = -1;

	memset(l, 0, sizeof(*l));
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (s < 0) {
		pr_err("socket");
		return -1;
	}
	if (ioctl(s, SIOCGIFINDEX, &ifr)) {
		pr_err("link %s: SIOCGIFINDEX", name);
		goto out;
	}
	l->index = ifr.ifr_ifindex;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) || (l->flags = (unsigned short)ifr.ifr_flags, 0) ||
	    ioctl(s, SIOCGIFMTU, &ifr) || (l->mtu = ifr.ifr_mtu, 0) || ioctl(s, SIOCGIFHWADDR, &ifr)) {
		pr_err("link %s: flags/mtu/hwaddr ioctl", name);
		goto out;
	}
	memcpy(l->mac, ifr.ifr_hwaddr.sa_data, 6);
	ret = 0;
out:
	close(s);
	return ret;
}

int test_tcp_probe(const char *addr, int port, int timeout_ms)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	struct pollfd p;
	socklen_t sl, el = sizeof(int);
	int s, err = 0;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		sl = sizeof(*a4);
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		sl = sizeof(*a6);
	} else {
		pr_err("not an address: %s", addr);
		return EINVAL;
	}
	s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s < 0)
		return errno;
	if (connect(s, (struct sockaddr *)&ss, sl) == 0)
		goto out;
	if (errno != EINPROGRESS) {
		err = errno;
		goto out;
	}
	p.fd = s;
	p.events = POLLOUT;
	if (poll(&p, 1, timeout_ms) <= 0)
		err = ETIMEDOUT;
	else
		getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
out:
	close(s);
	return err;
}

static int packet_socket(const char *name, int *index, unsigned char *mac)
{
	struct test_link l;
	struct sockaddr_ll sll;
	int s;

	if (test_link_get(name, &l))
		return -1;
	*index = l.index;
	memcpy(mac, l.mac, 6);
	s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ZDTM));
	if (s < 0) {
		pr_err("AF_PACKET socket");
		return -1;
	}
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ZDTM);
	sll.sll_ifindex = l.index;
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll))) {
		pr_err("bind AF_PACKET to %s", name);
		close(s);
		return -1;
	}
	return s;
}

int test_frame_across(const char *from, const char *to)
{
	unsigned char smac[6], dmac[6], frame[64], got[128];
	static const char payload[] = "zdtm frame across a veth";
	int fi, ti, tx, rx, ret = -1;
	struct ether_header *eh = (struct ether_header *)frame;
	struct pollfd p;
	ssize_t n;

	rx = packet_socket(to, &ti, dmac);
	tx = packet_socket(from, &fi, smac);
	if (rx < 0 || tx < 0)
		goto out;
	memset(frame, 0, sizeof(frame));
	memcpy(eh->ether_dhost, dmac, 6);
	memcpy(eh->ether_shost, smac, 6);
	eh->ether_type = htons(ETH_P_ZDTM);
	memcpy(frame + sizeof(*eh), payload, sizeof(payload));
	if (send(tx, frame, sizeof(frame), 0) != sizeof(frame)) {
		pr_err("send a frame on %s", from);
		goto out;
	}
	p.fd = rx;
	p.events = POLLIN;
	while (poll(&p, 1, 1000) > 0) {
		n = recv(rx, got, sizeof(got), 0);
		if (n >= (ssize_t)sizeof(frame) && !memcmp(got, frame, sizeof(frame))) {
			ret = 0;
			goto out;
		}
	}
	pr_err("the frame sent on %s did not arrive on %s", from, to);
out:
	if (rx >= 0)
		close(rx);
	if (tx >= 0)
		close(tx);
	return ret;
}

void test_sysctl_get(const char *name, char *buf, size_t len)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		fail("open %s", path);
	n = read(fd, buf, len - 1);
	if (n < 0)
		fail("read %s", path);
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
}

void test_sysctl_set(const char *name, const char *value)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		fail("open %s", path);
	if (write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		fail("write %s to %s", value, path);
	close(fd);
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort the lines of buf in place (a copy of at most 64 KiB, 1024 lines). */
static void sort_lines(char *buf)
{
	static char copy[1 << 16];
	char *lines[1024], *p, *out = buf;
	int n = 0, i;

	snprintf(copy, sizeof(copy), "%s", buf);
	for (p = strtok(copy, "\n"); p && n < 1024; p = strtok(NULL, "\n"))
		lines[n++] = p;
	qsort(lines, n, sizeof(lines[0]), line_cmp);
	for (i = 0; i < n; i++)
		out += sprintf(out, "%s\n", lines[i]);
}

void test_net_state(char *buf, size_t len)
{
	static const char *const cmds[][6] = {
		{ "ip", "-o", "link", "show", NULL },
		{ "ip", "-o", "addr", "show", NULL },
		{ "ip", "-4", "route", "show", "table", "all" },
		{ "ip", "-6", "route", "show", "table", "all" },
	};
	size_t used = 0;
	unsigned i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *const *c = cmds[i];

		if (len - used < 2)
			fail("net state does not fit in %zu bytes", len);
		if (test_capture(buf + used, len - used, c[0], c[1], c[2], c[3], c[4], c[5], (char *)NULL))
			fail("%s %s %s failed", c[0], c[1], c[2]);
		if (i == 3)		/* IPv6: see znetns.h */
			sort_lines(buf + used);
		used += strlen(buf + used);
	}
}

static int state_cmp(const char *before, const char *after, int report)
{
	const char *a = before, *b = after;

	while (*a || *b) {
		const char *ea = strchrnul(a, '\n'), *eb = strchrnul(b, '\n');

		if (ea - a != eb - b || memcmp(a, b, ea - a)) {
			if (report)
					pr_err("network state differs:\n  before: %.*s\n  after:  %.*s", (int)(ea - a), a,
			       (int)(eb - b), b);
			return -1;
		}
		a = *ea ? ea + 1 : ea;
		b = *eb ? eb + 1 : eb;
	}
	return 0;
}

int test_net_state_cmp(const char *before, const char *after)
{
	return state_cmp(before, after, 1);
}

int test_net_state_settled(const char *before, char *after, size_t len)
{
	int i;

	for (i = 0; i < 30; i++) {
		test_net_state(after, len);
		if (!state_cmp(before, after, 0))
			return 0;
		usleep(100 * 1000);
	}
	return test_net_state_cmp(before, after);
}

void test_net_no_dad(void)
{
	test_sysctl_set("net/ipv6/conf/all/accept_dad", "0");
	test_sysctl_set("net/ipv6/conf/default/accept_dad", "0");
}

int test_bind_addr(int sk, const struct sockaddr *addr, socklen_t len)
{
	int i;

	for (i = 0; i < 300; i++) {	/* a new IPv6 address is tentative until its DAD work ran */
		if (!bind(sk, addr, len))
			return 0;
		if (errno != EADDRNOTAVAIL)
			return -1;
		usleep(10 * 1000);
	}
	return -1;
}

int test_tcp_answered(const char *addr, int port)
{
	int i, err = 0;

	for (i = 0; i < 30; i++) {	/* a new bridge port or neighbour may take a moment */
		err = test_tcp_probe(addr, port, 1000);
		if (err == ECONNREFUSED || err == 0)
			return 0;
		usleep(100 * 1000);
	}
	pr_err("%s port %d does not answer: %s", addr, port, strerror(err));
	return -1;
}
