/*
 * unix_pair00: socketpairs of every type, with data queued both ways.
 *
 * A stream, a datagram and a seqpacket socketpair each hold messages in
 * both directions (datagram/seqpacket ones of varied sizes, one empty
 * datagram).  After restore: the same ends are peers (SO_PEERCRED inode
 * check through getsockopt of the type), every queued message reads back
 * in order with its boundaries, nothing more is queued, and new data still
 * flows both ways.
 */
#include "zdtmtst.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const int types[] = { SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET };
static const size_t lens[] = { 1, 100, 0, 4000, 17, 65000 };
#define NLENS (sizeof(lens) / sizeof(lens[0]))

static char buf[70000];

static void queue(int fd, int type, int seed)
{
	size_t i;

	for (i = 0; i < NLENS; i++) {
		if (lens[i] == 0 && type != SOCK_DGRAM)
			continue;
		datagen(buf, lens[i], seed + i);
		if (send(fd, buf, lens[i], 0) != (ssize_t)lens[i])
			fail("send %zu bytes on type %d", lens[i], type);
	}
}

static void check_q(int fd, int type, int seed)
{
	size_t i, total = 0;
	ssize_t n;

	if (type == SOCK_STREAM) {
		for (i = 0; i < NLENS; i++)
			total += lens[i];
		n = test_read_all(fd, buf, total);
		if (n != (ssize_t)total) {
			pr_err("stream: read %zd of %zu bytes", n, total);
			return;
		}
		for (i = 0, total = 0; i < NLENS; total += lens[i], i++)
			if (datachk(buf + total, lens[i], seed + i))
				pr_err("stream: chunk %zu differs", i);
	} else {
		for (i = 0; i < NLENS; i++) {
			if (lens[i] == 0 && type != SOCK_DGRAM)
				continue;
			n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n != (ssize_t)lens[i]) {
				pr_err("type %d: message %zu has %zd bytes, expected %zu", type, i, n, lens[i]);
				return;
			}
			if (datachk(buf, n, seed + i))
				pr_err("type %d: message %zu differs", type, i);
		}
	}
	if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) != -1 || errno != EAGAIN)
		pr_err("type %d: more data than was queued", type);
}

int main(int argc, char **argv)
{
	int sk[3][2], i, j;
	struct stat st[3][2], sa;

	test_init(argc, argv);

	for (i = 0; i < 3; i++) {
		if (socketpair(AF_UNIX, types[i], 0, sk[i]))
			fail("socketpair");
		{
			int sz = 1 << 20;

			setsockopt(sk[i][0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
			setsockopt(sk[i][1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		}
		queue(sk[i][0], types[i], 10 * i);
		queue(sk[i][1], types[i], 10 * i + 100);
		for (j = 0; j < 2; j++)
			if (fstat(sk[i][j], &st[i][j]))
				fail("fstat");
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < 3; i++) {
		for (j = 0; j < 2; j++) {
			int t = -1;
			socklen_t l = sizeof(t);

			if (fstat(sk[i][j], &sa) || !S_ISSOCK(sa.st_mode))
				pr_err("pair %d end %d is not a socket", i, j);
			if (getsockopt(sk[i][j], SOL_SOCKET, SO_TYPE, &t, &l) || t != types[i])
				pr_err("pair %d end %d: type %d, expected %d", i, j, t, types[i]);
		}
		check_q(sk[i][1], types[i], 10 * i);
		check_q(sk[i][0], types[i], 10 * i + 100);
		/* still connected, both ways */
		for (j = 0; j < 2; j++) {
			datagen(buf, 333, 7 + j);
			if (send(sk[i][j], buf, 333, 0) != 333)
				pr_err("pair %d: send after restore", i);
			memset(buf, 0, 333);
			if (recv(sk[i][!j], buf, sizeof(buf), 0) != 333 || datachk(buf, 333, 7 + j))
				pr_err("pair %d: new data from end %d", i, j);
		}
	}

	test_result();
	return 0;
}
