/*
 * unix_abstract00: abstract names (stream listener, datagram socket).
 *
 * A stream listener with an abstract name has one accepted connection and
 * one pending; a datagram socket with an abstract name holds two messages
 * from an abstract-named sender.  After restore: names are the same (they
 * live in the network namespace, which the ns flavor recreates), the
 * pending connection is accepted, messages read back with their sender,
 * and the names still resolve (connect/sendto by name work).
 */
#include "zdtmtst.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static socklen_t mk(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path + 1, name, strlen(name));
	return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

static int same(int fd, int peer, const char *name)
{
	struct sockaddr_un a, b;
	socklen_t l = sizeof(a), lb = mk(&b, name);

	memset(&a, 0, sizeof(a));
	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &l))
		return 0;
	return l == lb && !memcmp(&a, &b, l);
}

int main(int argc, char **argv)
{
	struct sockaddr_un la, da, sa, from;
	socklen_t ll, dl, sl, fl;
	int l, c1, a1, c2, a2, d, s, c3;
	char buf[100], name[64];

	test_init(argc, argv);
	/* unique per run: the h flavor shares the host's network namespace */
	snprintf(name, sizeof(name), "zdtm-ua-l-%d", getpid());
	ll = mk(&la, name);
	name[8] = 'd';
	dl = mk(&da, name);
	name[8] = 's';
	sl = mk(&sa, name);

	l = socket(AF_UNIX, SOCK_STREAM, 0);
	c1 = socket(AF_UNIX, SOCK_STREAM, 0);
	c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	d = socket(AF_UNIX, SOCK_DGRAM, 0);
	s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind(l, (struct sockaddr *)&la, ll) || listen(l, 5))
		fail("listener");
	if (connect(c1, (struct sockaddr *)&la, ll) || (a1 = accept(l, NULL, NULL)) < 0)
		fail("connect/accept");
	if (connect(c2, (struct sockaddr *)&la, ll))
		fail("connect c2");
	if (bind(d, (struct sockaddr *)&da, dl) || bind(s, (struct sockaddr *)&sa, sl))
		fail("dgram bind");
	if (sendto(s, "one", 3, 0, (struct sockaddr *)&da, dl) != 3 ||
	    sendto(s, "second", 6, 0, (struct sockaddr *)&da, dl) != 6)
		fail("sendto");
	if (write(c1, "ping", 4) != 4)
		fail("write");

	test_daemon();
	test_waitsig();

	name[8] = 'l';
	if (!same(l, 0, name) || !same(a1, 0, name) || !same(c1, 1, name) || !same(c2, 1, name))
		pr_err("stream names changed");
	if (read(a1, buf, sizeof(buf)) != 4 || memcmp(buf, "ping", 4))
		pr_err("queued stream data");
	if (write(a1, "pong", 4) != 4 || read(c1, buf, sizeof(buf)) != 4 || memcmp(buf, "pong", 4))
		pr_err("accepted connection broken");
	a2 = accept(l, NULL, NULL);
	if (a2 < 0 || write(c2, "x", 1) != 1 || read(a2, buf, 1) != 1 || buf[0] != 'x')
		pr_err("pending connection");
	c3 = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(c3, (struct sockaddr *)&la, ll) || accept(l, NULL, NULL) < 0)
		pr_err("new connection by the abstract name");

	fl = sizeof(from);
	if (recvfrom(d, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl) != 3 ||
	    memcmp(buf, "one", 3) || fl != sl || memcmp(&from, &sa, sl))
		pr_err("first datagram or its sender");
	fl = sizeof(from);
	if (recvfrom(d, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl) != 6 ||
	    memcmp(buf, "second", 6) || fl != sl || memcmp(&from, &sa, sl))
		pr_err("second datagram or its sender");
	if (recv(d, buf, sizeof(buf), MSG_DONTWAIT) != -1 || errno != EAGAIN)
		pr_err("extra datagrams");
	if (sendto(d, "back", 4, 0, (struct sockaddr *)&sa, sl) != 4 ||
	    recv(s, buf, sizeof(buf), MSG_DONTWAIT) != 4)
		pr_err("sendto by abstract name");
	test_result();
	return 0;
}
