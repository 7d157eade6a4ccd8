/*
 * unix_listen_cred00: a listener's credentials (SO_PEERCRED) are those of
 * the listen() caller, as a daemon that dropped its privileges has them.
 *
 * The test binds a path name as root, then listens with euid/egid 65534
 * (nobody; the saved ids stay root's, so it comes back), as a server
 * running as its own user does.  After restore: SO_PEERCRED of the listener
 * says 65534:65534, and a new client connecting sees its server as that
 * user (the kernel copies the listener's credentials to the client), which
 * is what clients that check their server's identity read.
 */
#include "zdtmtst.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define ID 65534

static int cred_is(int fd, const char *what)
{
	struct ucred c;
	socklen_t len = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len)) {
		pr_err("SO_PEERCRED of %s", what);
		return 0;
	}
	if (c.uid != ID || c.gid != ID) {
		pr_err("%s: SO_PEERCRED says %u:%u, expected %d:%d", what, c.uid, c.gid, ID, ID);
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int l, c;

	test_init(argc, argv);
	snprintf(a.sun_path, sizeof(a.sun_path), "cred.sock");
	unlink(a.sun_path);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)))
		fail("bind");
	if (setresgid(-1, ID, -1) || setresuid(-1, ID, -1))
		fail("setresuid");
	if (listen(l, 8))
		fail("listen");
	if (setresuid(-1, 0, -1) || setresgid(-1, 0, -1))
		fail("back to root");
	if (!cred_is(l, "the listener before"))
		fail("the kernel does not take the listen() caller's ids");

	test_daemon();
	test_waitsig();

	cred_is(l, "the listener");
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)))
		pr_err("connect after restore");
	else
		cred_is(c, "a new client's view of its server");
	unlink(a.sun_path);
	test_result();
	return 0;
}
