/*
 * unix_sockfile00: the socket files of bound unix sockets keep their mode,
 * owner and group (PostgreSQL's and tmux's listening sockets).
 *
 * A stream listener (mode 0777, owner 1000:1001, a pending connection), a
 * datagram server (mode 0620, owner 2:3, a queued message) and a seqpacket
 * listener (mode 0700, the default owner) are bound to paths.  After
 * restore: each file is a socket with the same mode, uid and gid, clients
 * can connect to / send to it, and getsockname reports the path.
 */
#include "zdtmtst.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct bound {
	const char *path;
	int type;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	int fd;
};

static struct bound socks[] = {
	{ "unix_sockfile00.stream", SOCK_STREAM, 0777, 1000, 1001, -1 },
	{ "unix_sockfile00.dgram", SOCK_DGRAM, 0620, 2, 3, -1 },
	{ "unix_sockfile00.seq", SOCK_SEQPACKET, 0700, 0, 0, -1 },
};
#define NS	(sizeof(socks) / sizeof(socks[0]))

static struct sockaddr_un addr(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
	return a;
}

static void check_sock(struct bound *b)
{
	struct sockaddr_un a = addr(b->path), got;
	socklen_t l = sizeof(got);
	struct stat st;
	int c;

	if (lstat(b->path, &st) || !S_ISSOCK(st.st_mode)) {
		pr_err("%s: not a socket file any more", b->path);
		return;
	}
	if ((st.st_mode & 07777) != b->mode || st.st_uid != b->uid || st.st_gid != b->gid)
		pr_err("%s: mode %o owner %d:%d, want %o %d:%d", b->path, st.st_mode & 07777,
		       (int)st.st_uid, (int)st.st_gid, b->mode, (int)b->uid, (int)b->gid);
	memset(&got, 0, sizeof(got));
	if (getsockname(b->fd, (struct sockaddr *)&got, &l) || strcmp(got.sun_path, b->path))
		pr_err("%s: getsockname", b->path);
	c = socket(AF_UNIX, b->type, 0);
	if (b->type == SOCK_DGRAM) {
		if (sendto(c, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)) != 1)
			pr_err("%s: sendto after restore", b->path);
	} else if (connect(c, (struct sockaddr *)&a, sizeof(a))) {
		pr_err("%s: connect after restore", b->path);
	}
	close(c);
}

int main(int argc, char **argv)
{
	struct sockaddr_un a;
	char buf[16];
	size_t i;
	int pend, dc;

	test_init(argc, argv);
	for (i = 0; i < NS; i++) {
		struct bound *b = &socks[i];

		a = addr(b->path);
		unlink(b->path);
		b->fd = socket(AF_UNIX, b->type, 0);
		if (b->fd < 0 || bind(b->fd, (struct sockaddr *)&a, sizeof(a)))
			fail("bind %s", b->path);
		if (b->type != SOCK_DGRAM && listen(b->fd, 4))
			fail("listen %s", b->path);
		if (chmod(b->path, b->mode) || chown(b->path, b->uid, b->gid))
			fail("chmod/chown %s", b->path);
	}
	a = addr(socks[0].path);
	pend = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(pend, (struct sockaddr *)&a, sizeof(a)))
		fail("pending connection");
	a = addr(socks[1].path);
	dc = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (sendto(dc, "hello", 5, 0, (struct sockaddr *)&a, sizeof(a)) != 5)
		fail("queued datagram");

	test_daemon();
	test_waitsig();

	for (i = 0; i < NS; i++)
		check_sock(&socks[i]);
	if (recv(socks[1].fd, buf, sizeof(buf), MSG_DONTWAIT) != 5 || memcmp(buf, "hello", 5))
		pr_err("queued datagram lost");
	if (accept(socks[0].fd, NULL, NULL) < 0)
		pr_err("pending connection lost");
	for (i = 0; i < NS; i++)
		unlink(socks[i].path);
	test_result();
}
