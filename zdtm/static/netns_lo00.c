/*
 * netns_lo00: the loopback of the test's network namespace, with TCP over it.
 *
 * lo gets MTU 61000 and two more addresses (10.31.0.1/32, fd31::1/128).  A TCP
 * listener on each address has an established connection from a client in the
 * test: the client sent bytes the server has not read, the server sent bytes
 * the client has not read (--tcp-established).  After restore: ip's view of
 * the namespace is the same, the queued bytes arrive, both connections carry
 * data both ways, and both listeners accept new connections.
 */
#include "zdtmtst.h"
#include "znetns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORT 8031

struct conn {
	const char *addr;
	int family;
	int lsk, csk, ssk;	/* listener, client end, server end */
};

static socklen_t mkaddr(struct conn *c, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (c->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(PORT);
		inet_pton(AF_INET, c->addr, &a->sin_addr);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	a6->sin6_family = AF_INET6;
	a6->sin6_port = htons(PORT);
	inet_pton(AF_INET6, c->addr, &a6->sin6_addr);
	return sizeof(*a6);
}

static int connect_to(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = mkaddr(c, &ss);
	int s = socket(c->family, SOCK_STREAM, 0);

	if (s < 0 || connect(s, (struct sockaddr *)&ss, sl))
		return -1;
	return s;
}

static void setup(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = mkaddr(c, &ss);
	int one = 1;

	c->lsk = socket(c->family, SOCK_STREAM, 0);
	if (c->lsk < 0 || setsockopt(c->lsk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    test_bind_addr(c->lsk, (struct sockaddr *)&ss, sl) || listen(c->lsk, 8))
		fail("listen on %s", c->addr);
	c->csk = connect_to(c);
	if (c->csk < 0)
		fail("connect to %s", c->addr);
	c->ssk = accept(c->lsk, NULL, NULL);
	if (c->ssk < 0)
		fail("accept on %s", c->addr);
	if (write(c->csk, "to-server", 9) != 9 || write(c->ssk, "to-client", 9) != 9)
		fail("write on %s", c->addr);
}

static void expect(int fd, const char *what, const char *where)
{
	char buf[32] = "";
	size_t n = strlen(what);

	if (test_read_all(fd, buf, n) != (ssize_t)n || memcmp(buf, what, n))
		pr_err("%s: expected '%s', got '%.*s'", where, what, (int)n, buf);
}

static void check_conn(struct conn *c)
{
	int s, a;

	expect(c->ssk, "to-server", c->addr);
	expect(c->csk, "to-client", c->addr);
	if (write(c->csk, "again-up", 8) != 8 || write(c->ssk, "again-dn", 8) != 8)
		pr_err("%s: write after restore", c->addr);
	expect(c->ssk, "again-up", c->addr);
	expect(c->csk, "again-dn", c->addr);
	s = connect_to(c);
	if (s < 0) {
		pr_err("%s: a new connection after restore", c->addr);
		return;
	}
	a = accept(c->lsk, NULL, NULL);
	if (a < 0)
		pr_err("%s: accept after restore", c->addr);
	else
		close(a);
	close(s);
}

int main(int argc, char **argv)
{
	static char before[1 << 16], after[1 << 16];
	struct conn conns[] = { { "10.31.0.1", AF_INET }, { "fd31::1", AF_INET6 } };
	unsigned i;

	test_init(argc, argv);
	test_lo_up();
	test_ok("ip", "link", "set", "lo", "mtu", "61000");
	test_ok("ip", "addr", "add", "10.31.0.1/32", "dev", "lo");
	test_ok("ip", "addr", "add", "fd31::1/128", "dev", "lo");
	for (i = 0; i < 2; i++)
		setup(&conns[i]);
	test_net_state(before, sizeof(before));

	test_daemon();
	test_waitsig();

	test_net_state_settled(before, after, sizeof(after));
	for (i = 0; i < 2; i++)
		check_conn(&conns[i]);
	test_result();
	return 0;
}
