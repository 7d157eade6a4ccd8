/*
 * unix_dgram00: datagram sockets bound to paths, with queued messages from
 * several senders.
 *
 * A server bound to a path holds messages from two bound clients and one
 * unbound socket, with varied sizes (one empty).  Client a is connect()ed
 * to the server; client b is not.  After restore: every message reads back
 * in order with its boundary and sender address, names are unchanged, a is
 * still connected (send() without address reaches the server), and the
 * server can still answer each client by its name.
 */
#include "zdtmtst.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SRV	"unix_dgram00.srv"
#define CLA	"unix_dgram00.a"
#define CLB	"unix_dgram00.b"

static const struct { int who; size_t len; } msgs[] = {
	{ 0, 10 }, { 1, 2000 }, { 2, 0 }, { 0, 1 }, { 2, 300 }, { 1, 0 }, { 0, 60000 },
};
#define NMSG	(sizeof(msgs) / sizeof(msgs[0]))
static const char *names[] = { CLA, CLB, NULL };
static char buf[70000];

static struct sockaddr_un mk(const char *p)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	strcpy(a.sun_path, p);
	return a;
}

static int sock(const char *name)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0), sz = 1 << 20;

	if (fd < 0)
		fail("socket");
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (name) {
		unlink(name);
		a = mk(name);
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
			fail("bind %s", name);
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct sockaddr_un srv = mk(SRV), from;
	int s, c[3];
	size_t i;
	ssize_t n;
	socklen_t fl;

	test_init(argc, argv);

	s = sock(SRV);
	for (i = 0; i < 3; i++)
		c[i] = sock(names[i]);
	if (connect(c[0], (struct sockaddr *)&srv, sizeof(srv)))
		fail("connect");
	for (i = 0; i < NMSG; i++) {
		datagen(buf, msgs[i].len, i);
		if (sendto(c[msgs[i].who], buf, msgs[i].len, 0, (struct sockaddr *)&srv, sizeof(srv)) !=
		    (ssize_t)msgs[i].len)
			fail("sendto %zu", i);
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < NMSG; i++) {
		const char *want = names[msgs[i].who];

		memset(&from, 0, sizeof(from));
		fl = sizeof(from);
		n = recvfrom(s, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n != (ssize_t)msgs[i].len) {
			pr_err("message %zu: %zd bytes, expected %zu", i, n, msgs[i].len);
			break;
		}
		if (datachk(buf, n, i))
			pr_err("message %zu: data differs", i);
		if (want ? (fl <= sizeof(sa_family_t) || strcmp(from.sun_path, want))
			 : fl > sizeof(sa_family_t))
			pr_err("message %zu: sender '%s', expected '%s'", i,
			       fl > sizeof(sa_family_t) ? from.sun_path : "", want ? want : "");
	}
	if (recv(s, buf, sizeof(buf), MSG_DONTWAIT) != -1 || errno != EAGAIN)
		pr_err("more messages than were queued");

	memset(&from, 0, sizeof(from));
	fl = sizeof(from);
	if (getpeername(c[0], (struct sockaddr *)&from, &fl) || strcmp(from.sun_path, SRV))
		pr_err("client a lost its peer");
	fl = sizeof(from);
	if (getsockname(c[1], (struct sockaddr *)&from, &fl) || strcmp(from.sun_path, CLB))
		pr_err("client b lost its name");
	fl = sizeof(from);
	if (getpeername(c[1], (struct sockaddr *)&from, &fl) == 0 || errno != ENOTCONN)
		pr_err("client b became connected");
	if (send(c[0], "x", 1, 0) != 1 || recv(s, buf, 10, MSG_DONTWAIT) != 1 || buf[0] != 'x')
		pr_err("connected client a cannot send");
	for (i = 0; i < 2; i++) {
		struct sockaddr_un to = mk(names[i]);

		if (sendto(s, "yz", 2, 0, (struct sockaddr *)&to, sizeof(to)) != 2 ||
		    recv(c[i], buf, 10, MSG_DONTWAIT) != 2 || memcmp(buf, "yz", 2))
			pr_err("server cannot answer %s", names[i]);
	}
	unlink(SRV);
	unlink(CLA);
	unlink(CLB);
	test_result();
	return 0;
}
