/*
 * unix_seqpacket00: a seqpacket listener with an accepted and a pending
 * connection.
 *
 * Messages of varied sizes are queued both ways on the accepted
 * connection.  After restore: they read back in order with their
 * boundaries (a short buffer truncates one message only), the pending
 * connection is accepted and carries messages, and the type is unchanged.
 */
#include "zdtmtst.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NAME	"unix_seqpacket00.sock"
static const size_t lens[] = { 5, 1000, 1, 30000, 77 };
#define NL	(sizeof(lens) / sizeof(lens[0]))
static char buf[40000];

static void chk(int fd, int seed, const char *who)
{
	size_t i;

	for (i = 0; i < NL; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n != (ssize_t)lens[i] || datachk(buf, n, seed + i)) {
			pr_err("%s: message %zu (%zd bytes)", who, i, n);
			return;
		}
	}
	if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) != -1 || errno != EAGAIN)
		pr_err("%s: extra messages", who);
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = NAME };
	int l, c1, a1, c2, a2, t, sz = 1 << 20;
	socklen_t tl = sizeof(t);
	size_t i;

	test_init(argc, argv);
	unlink(NAME);
	l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	c1 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	c2 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (bind(l, (struct sockaddr *)&addr, sizeof(addr)) || listen(l, 5))
		fail("listener");
	if (connect(c1, (struct sockaddr *)&addr, sizeof(addr)) || (a1 = accept(l, NULL, NULL)) < 0)
		fail("connect/accept");
	if (connect(c2, (struct sockaddr *)&addr, sizeof(addr)))
		fail("connect c2");
	setsockopt(c1, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(a1, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	for (i = 0; i < NL; i++) {
		datagen(buf, lens[i], i);
		if (send(c1, buf, lens[i], 0) != (ssize_t)lens[i])
			fail("send c1");
		datagen(buf, lens[i], 50 + i);
		if (send(a1, buf, lens[i], 0) != (ssize_t)lens[i])
			fail("send a1");
	}

	test_daemon();
	test_waitsig();

	if (getsockopt(a1, SOL_SOCKET, SO_TYPE, &t, &tl) || t != SOCK_SEQPACKET)
		pr_err("type changed");
	chk(a1, 0, "server side");
	chk(c1, 50, "client side");
	if (send(c1, "abcdef", 6, 0) != 6 || send(c1, "gh", 2, 0) != 2 ||
	    recv(a1, buf, 3, 0) != 3 || recv(a1, buf, 10, 0) != 2 || memcmp(buf, "gh", 2))
		pr_err("boundaries of new messages");
	a2 = accept(l, NULL, NULL);
	if (a2 < 0 || send(a2, "hi", 2, 0) != 2 || recv(c2, buf, 10, 0) != 2)
		pr_err("pending connection");
	unlink(NAME);
	test_result();
	return 0;
}
