/*
 * unix_stream00: a listener bound to a path, an accepted connection and a
 * connection still waiting in the accept queue.
 *
 * The listener is bound to a relative path in the cwd.  One connection is
 * accepted and carries data queued both ways; a second client has
 * connected but is not accepted.  After restore: names and peer names are
 * unchanged, the queued data reads back, the accepted connection works both
 * ways, the pending connection is accept()ed (exactly one), and the
 * listener still takes new connections by its path.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define NAME	"unix_stream00.sock"

static char buf[8192];

static int name_is(int fd, int peer, const char *want)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);

	memset(&a, 0, sizeof(a));
	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &l))
		return 0;
	if (!want)
		return l == sizeof(sa_family_t);
	return l > sizeof(sa_family_t) && !strcmp(a.sun_path, want);
}

static void xfer(int from, int to, int seed, const char *what)
{
	datagen(buf, 1000, seed);
	if (write(from, buf, 1000) != 1000)
		pr_err("%s: write", what);
	memset(buf, 0, 1000);
	if (test_read_all(to, buf, 1000) != 1000 || datachk(buf, 1000, seed))
		pr_err("%s: data", what);
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = NAME };
	int l, c1, a1, c2, a2, c3, a3;
	struct stat st;

	test_init(argc, argv);

	unlink(NAME);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	c1 = socket(AF_UNIX, SOCK_STREAM, 0);
	c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || c1 < 0 || c2 < 0)
		fail("socket");
	if (bind(l, (struct sockaddr *)&addr, sizeof(addr)) || listen(l, 4))
		fail("bind/listen");
	if (connect(c1, (struct sockaddr *)&addr, sizeof(addr)))
		fail("connect c1");
	a1 = accept(l, NULL, NULL);
	if (a1 < 0)
		fail("accept");
	if (connect(c2, (struct sockaddr *)&addr, sizeof(addr)))
		fail("connect c2");
	datagen(buf, 5000, 1);
	if (write(c1, buf, 5000) != 5000)
		fail("write c1");
	datagen(buf, 3000, 2);
	if (write(a1, buf, 3000) != 3000)
		fail("write a1");

	test_daemon();
	test_waitsig();

	if (!name_is(l, 0, NAME) || !name_is(a1, 0, NAME) || !name_is(c1, 1, NAME) ||
	    !name_is(c2, 1, NAME) || !name_is(c1, 0, NULL))
		pr_err("socket names changed");
	if (stat(NAME, &st) || !S_ISSOCK(st.st_mode))
		pr_err("the socket file is gone");
	memset(buf, 0, sizeof(buf));
	if (test_read_all(a1, buf, 5000) != 5000 || datachk(buf, 5000, 1))
		pr_err("data queued to the server side");
	if (test_read_all(c1, buf, 3000) != 3000 || datachk(buf, 3000, 2))
		pr_err("data queued to the client side");
	xfer(c1, a1, 3, "c1 -> a1");
	xfer(a1, c1, 4, "a1 -> c1");

	fcntl(l, F_SETFL, O_NONBLOCK);
	a2 = accept(l, NULL, NULL);
	if (a2 < 0) {
		pr_err("the pending connection is lost");
	} else {
		xfer(c2, a2, 5, "c2 -> a2");
		xfer(a2, c2, 6, "a2 -> c2");
	}
	if (accept(l, NULL, NULL) >= 0 || errno != EAGAIN)
		pr_err("more than one connection was pending");

	c3 = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(c3, (struct sockaddr *)&addr, sizeof(addr)))
		pr_err("connect after restore");
	a3 = accept(l, NULL, NULL);
	if (a3 < 0)
		pr_err("accept after restore");
	else
		xfer(c3, a3, 7, "c3 -> a3");
	unlink(NAME);
	test_result();
	return 0;
}
