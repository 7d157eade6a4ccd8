/*
 * unix_listen_backlog00: a full accept queue keeps its order and backlog.
 *
 * A stream listener with backlog 2 has 3 pending connections (the kernel
 * admits backlog + 1; a fourth is refused).  After restore: accept()
 * returns the connections in their original order (each client identifies
 * itself after restore), a fourth connection
 * does not fit without an accept first (non-blocking connect gives EAGAIN),
 * and fits after one.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NAME	"unix_listen_backlog00.sock"
#define NC	3

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = NAME };
	int l, c[NC], a, x, i;
	char b;

	test_init(argc, argv);
	unlink(NAME);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(l, (struct sockaddr *)&addr, sizeof(addr)) || listen(l, 2))
		fail("listener");
	for (i = 0; i < NC; i++) {
		c[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(c[i], (struct sockaddr *)&addr, sizeof(addr)))
			fail("connect %d", i);
	}
	x = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (connect(x, (struct sockaddr *)&addr, sizeof(addr)) == 0 || errno != EAGAIN)
		fail("the accept queue is not full");
	close(x);

	test_daemon();
	test_waitsig();

	for (i = NC - 1; i >= 0; i--) {
		b = 'a' + i;
		if (write(c[i], &b, 1) != 1)
			pr_err("client %d cannot write", i);
	}
	x = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (connect(x, (struct sockaddr *)&addr, sizeof(addr)) == 0 || errno != EAGAIN)
		pr_err("the accept queue is not full after restore");
	for (i = 0; i < NC; i++) {
		a = accept(l, NULL, NULL);
		if (a < 0 || read(a, &b, 1) != 1) {
			pr_err("accept %d", i);
			continue;
		}
		if (b != 'a' + i)
			pr_err("accept %d returned client %d", i, b - 'a');
		if (i == 0 && connect(x, (struct sockaddr *)&addr, sizeof(addr)))
			pr_err("no room after an accept");
	}
	unlink(NAME);
	test_result();
	return 0;
}
