/*
 * unix_deleted00: sockets bound to paths that were then unlinked.
 *
 * A stream listener (one accepted connection, one pending) and a datagram
 * server (a connected client, a queued message) are bound to paths that
 * are unlinked before the dump.  After restore: the paths still do not
 * exist, getsockname still reports them, the connections work, the pending
 * one is accepted, the queued message reads back and the connected client
 * still reaches the server.
 */
#include "zdtmtst.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LNAME	"unix_deleted00.l"
#define DNAME	"unix_deleted00.d"

static int named(int fd, int peer, const char *want)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);

	memset(&a, 0, sizeof(a));
	return !(peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &l) &&
	       !strcmp(a.sun_path, want);
}

int main(int argc, char **argv)
{
	struct sockaddr_un la = { .sun_family = AF_UNIX, .sun_path = LNAME };
	struct sockaddr_un da = { .sun_family = AF_UNIX, .sun_path = DNAME };
	int l, c1, a1, c2, a2, d, dc;
	char buf[100];

	test_init(argc, argv);
	unlink(LNAME);
	unlink(DNAME);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	c1 = socket(AF_UNIX, SOCK_STREAM, 0);
	c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	d = socket(AF_UNIX, SOCK_DGRAM, 0);
	dc = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind(l, (struct sockaddr *)&la, sizeof(la)) || listen(l, 5))
		fail("listener");
	if (connect(c1, (struct sockaddr *)&la, sizeof(la)) || (a1 = accept(l, NULL, NULL)) < 0)
		fail("connect/accept");
	if (connect(c2, (struct sockaddr *)&la, sizeof(la)))
		fail("connect c2");
	if (bind(d, (struct sockaddr *)&da, sizeof(da)) || connect(dc, (struct sockaddr *)&da, sizeof(da)))
		fail("dgram");
	if (send(dc, "queued", 6, 0) != 6)
		fail("send");
	if (unlink(LNAME) || unlink(DNAME))
		fail("unlink");

	test_daemon();
	test_waitsig();

	if (access(LNAME, F_OK) == 0 || access(DNAME, F_OK) == 0)
		pr_err("a deleted socket file is back");
	if (!named(l, 0, LNAME) || !named(a1, 0, LNAME) || !named(c1, 1, LNAME) || !named(c2, 1, LNAME) ||
	    !named(d, 0, DNAME) || !named(dc, 1, DNAME))
		pr_err("names changed");
	if (write(c1, "ab", 2) != 2 || read(a1, buf, 10) != 2 || write(a1, "cd", 2) != 2 || read(c1, buf, 10) != 2)
		pr_err("accepted connection");
	a2 = accept(l, NULL, NULL);
	if (a2 < 0 || write(c2, "x", 1) != 1 || read(a2, buf, 1) != 1)
		pr_err("pending connection");
	if (recv(d, buf, sizeof(buf), MSG_DONTWAIT) != 6 || memcmp(buf, "queued", 6))
		pr_err("queued datagram");
	if (send(dc, "new", 3, 0) != 3 || recv(d, buf, sizeof(buf), MSG_DONTWAIT) != 3)
		pr_err("connected datagram client");
	test_result();
	return 0;
}
