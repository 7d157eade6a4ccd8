/*
 * unix_peercred00: SO_PEERCRED's pid of restored unix sockets names the
 * process it named before: the maker of a socketpair, the listen() caller
 * (for a listener and for its clients), the connect() caller (for the end
 * accept() gave).
 *
 * The parent P makes a stream and a datagram socketpair and listens on
 * peercred.sock (path name: in the restored task the connect goes through
 * a directory fd).  Its child C connects to it (C's end names P, the end P
 * accepts names C), then listens on peercred2.sock itself; P connects to
 * that (P's end names C, the end C accepts names P) and C closes that
 * listener (so the restore needs a listener of its own for the pair).
 * After restore each process checks getsockopt(SO_PEERCRED) of each of its
 * sockets; the harness compares them too (sockopts: peercred=UID:GID:PID).
 */
#include "zdtmtst.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void path_addr(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	strncpy(a->sun_path, name, sizeof(a->sun_path) - 1);
}

static void peer_is(int fd, pid_t want, const char *what)
{
	struct ucred c;
	socklen_t len = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len))
		pr_err("SO_PEERCRED of %s", what);
	else if (c.pid != want)
		pr_err("%s: SO_PEERCRED names pid %d, expected %d", what, c.pid, want);
}

static int listener(const char *name)
{
	struct sockaddr_un a;
	int l = socket(AF_UNIX, SOCK_STREAM, 0);

	path_addr(&a, name);
	unlink(name);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4))
		fail("listen on %s", name);
	return l;
}

static int connect_to(const char *name)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	int i;

	path_addr(&a, name);
	for (i = 0; i < 5000; i++) {
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		usleep(1000);
	}
	fail("connect to %s", name);
}

int main(int argc, char **argv)
{
	int st[2], dg[2], l, l2, acc, cli, pc[2], cp[2];
	pid_t parent, child;
	char c;

	test_init(argc, argv);
	parent = getpid();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg))
		fail("socketpair");
	if (pipe(pc) || pipe(cp))
		fail("pipe");
	l = listener("peercred.sock");
	child = test_fork();
	if (child == 0) {
		int mine = connect_to("peercred.sock"), back;

		l2 = listener("peercred2.sock");
		if (write(cp[1], "l", 1) != 1)
			fail("tell the parent");
		back = accept(l2, NULL, NULL);
		if (back < 0)
			fail("accept");
		close(l2);
		test_child_ready();
		test_waitsig();
		peer_is(mine, parent, "child: its connection to the parent's listener");
		peer_is(back, parent, "child: the connection it accepted from the parent");
		test_child_exit();
	}
	acc = accept(l, NULL, NULL);
	if (acc < 0)
		fail("accept");
	if (read(cp[0], &c, 1) != 1)
		fail("the child's listener");
	cli = connect_to("peercred2.sock");

	test_daemon();
	test_waitsig();

	peer_is(st[0], parent, "stream socketpair end 0");
	peer_is(st[1], parent, "stream socketpair end 1");
	peer_is(dg[0], parent, "datagram socketpair end 0");
	peer_is(dg[1], parent, "datagram socketpair end 1");
	peer_is(l, parent, "listener");
	peer_is(acc, child, "the connection accepted from the child");
	peer_is(cli, child, "the connection to the child's listener");
	test_children_check();
	test_result();
	return 0;
}
