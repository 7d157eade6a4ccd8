/* Small network helpers shared by the socket scenarios. */
#include "zdtmtst.h"

#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

void test_lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr))
		fail("SIOCGIFFLAGS lo");
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr))
			fail("SIOCSIFFLAGS lo");
	}
	close(s);
}

int test_getsockopt_int(int fd, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof(v);

	if (getsockopt(fd, level, opt, &v, &l))
		pr_err("getsockopt(%d, %d, %d)", fd, level, opt);
	return v;
}

int test_unix_connect(const char *name, int type, char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char cwd[sizeof(sun.sun_path)];
	int sk;

	if (!getcwd(cwd, sizeof(cwd)) ||
	    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", cwd, name) >= (int)sizeof(sun.sun_path))
		fail("the path of %s is too long", name);
	sk = socket(AF_UNIX, type, 0);
	if (sk < 0 || connect(sk, (struct sockaddr *)&sun, sizeof(sun)))
		fail("connect to %s", sun.sun_path);
	if (path)
		memcpy(path, sun.sun_path, sizeof(sun.sun_path));
	return sk;
}

int test_ask_line(int sk, const char *word)
{
	char line[256], want[256];
	size_t n = strlen(word), i;

	if (n + 1 >= sizeof(want))
		fail("word too long");
	for (i = 0; i < n; i++)
		want[i] = toupper((unsigned char)word[i]);
	want[n] = '\n';
	memcpy(line, word, n);
	line[n] = '\n';
	if (test_write_all(sk, line, n + 1) != (ssize_t)n + 1) {
		pr_err("say '%s'", word);
		return -1;
	}
	if (test_read_all(sk, line, n + 1) != (ssize_t)n + 1 || memcmp(line, want, n + 1)) {
		pr_err("no answer '%.*s' to '%s'", (int)n, want, word);
		return -1;
	}
	return 0;
}

void test_check_unix_peer(int sk, const char *path)
{
	struct sockaddr_un peer;
	socklen_t len = sizeof(peer);

	if (getpeername(sk, (struct sockaddr *)&peer, &len))
		pr_err("getpeername");
	else if (strcmp(peer.sun_path, path))
		pr_err("connected to '%s', expected '%s'", peer.sun_path, path);
}

int test_recv_fd(int sk)
{
	char c, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sk, &mh, 0) != 1)
		fail("recvmsg");
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		fail("no fd from the peer");
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

unsigned long test_fd_inode(int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		fail("fstat(%d)", fd);
	return (unsigned long)st.st_ino;
}

int test_tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l))
		return -1;
	return ti.tcpi_state;
}

int test_tcp_wait_state(int fd, int want)
{
	int i;

	for (i = 0; i < 10000; i++) {
		if (test_tcp_state(fd) == want)
			return 0;
		usleep(1000);
	}
	return -1;
}

size_t test_tcp_fill(int fd, uint64_t seed)
{
	static char buf[4096];
	size_t done = 0;
	ssize_t n;
	int i;

	for (i = 0; i < 50; i++) {		/* until EAGAIN holds for a while */
		for (;;) {
			datagen_at(buf, sizeof(buf), seed, done);
			n = send(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n <= 0)
				break;
			done += n;
			i = 0;
		}
		if (errno != EAGAIN)
			fail("fill");
		usleep(2000);
	}
	return done;
}

int test_expect_pattern(int fd, size_t len, uint64_t seed, size_t off, const char *who)
{
	static char buf[1 << 16];
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
		ssize_t r = test_read_all(fd, buf, n);

		if (r != (ssize_t)n) {
			pr_err("%s: got %zu of %zu bytes", who, done + (r > 0 ? r : 0), len);
			return -1;
		}
		if (datachk_at(buf, n, seed, off + done)) {
			pr_err("%s: wrong data at offset %zu", who, off + done);
			return -1;
		}
		done += n;
	}
	return 0;
}

void test_expect_eof(int fd, const char *who)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;
	ssize_t n;

	if (poll(&p, 1, 10000) != 1)
		pr_err("%s: no EOF", who);
	else if ((n = recv(fd, &c, 1, MSG_DONTWAIT)) != 0)
		pr_err("%s: %zd instead of EOF", who, n);
}

void test_expect_epipe(int fd, const char *who)
{
	if (send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != -1 || errno != EPIPE)
		pr_err("%s: a send after SHUT_WR did not fail with EPIPE", who);
}
