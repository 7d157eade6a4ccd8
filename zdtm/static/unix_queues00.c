/*
 * unix_queues00: big queues and socket options.
 *
 * A stream pair with enlarged buffers (SO_SNDBUF/SO_RCVBUF) holds 600 KiB
 * queued one way and 64 KiB the other; the reader has SO_PASSCRED and
 * SO_PEEK_OFF set and is O_NONBLOCK.  After restore: the options and
 * buffer sizes read back the same, the file flags are the same, every byte
 * reads back in order (the peek offset is honoured first: a MSG_PEEK
 * starts at the saved offset), and then the queue is empty.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BIG	(600 * 1024)
#define SMALL	(64 * 1024)
#define PEEKOFF	1000

static int opt(int fd, int o)
{
	int v = -7;
	socklen_t l = sizeof(v);

	getsockopt(fd, SOL_SOCKET, o, &v, &l);
	return v;
}

int main(int argc, char **argv)
{
	int p[2], snd = 2 << 20, rcv = 1 << 20, one = 1, off = PEEKOFF;
	int b_snd, b_rcv, b_snd1, b_rcv1;
	char *buf;
	size_t done;
	ssize_t n;

	test_init(argc, argv);
	buf = malloc(BIG);
	if (!buf || socketpair(AF_UNIX, SOCK_STREAM, 0, p))
		fail("setup");
	if (setsockopt(p[0], SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)) ||
	    setsockopt(p[1], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) ||
	    setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &rcv, sizeof(rcv)))
		fail("buffers");
	datagen(buf, BIG, 5);
	for (done = 0; done < BIG; done += n)
		if ((n = write(p[0], buf + done, BIG - done < 50000 ? BIG - done : 50000)) <= 0)
			fail("write");
	datagen(buf, SMALL, 6);
	if (write(p[1], buf, SMALL) != SMALL)
		fail("write back");
	if (setsockopt(p[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) ||
	    setsockopt(p[1], SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		fail("options");
	fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
	b_snd = opt(p[0], SO_SNDBUF);
	b_rcv = opt(p[0], SO_RCVBUF);
	b_snd1 = opt(p[1], SO_SNDBUF);
	b_rcv1 = opt(p[1], SO_RCVBUF);

	test_daemon();
	test_waitsig();

	if (opt(p[0], SO_SNDBUF) != b_snd || opt(p[0], SO_RCVBUF) != b_rcv ||
	    opt(p[1], SO_SNDBUF) != b_snd1 || opt(p[1], SO_RCVBUF) != b_rcv1)
		pr_err("buffer sizes changed: %d/%d %d/%d -> %d/%d %d/%d", b_snd, b_rcv, b_snd1, b_rcv1,
		       opt(p[0], SO_SNDBUF), opt(p[0], SO_RCVBUF), opt(p[1], SO_SNDBUF), opt(p[1], SO_RCVBUF));
	if (opt(p[1], SO_PASSCRED) != 1 || opt(p[0], SO_PASSCRED) != 0)
		pr_err("SO_PASSCRED changed");
	if (opt(p[1], SO_PEEK_OFF) != PEEKOFF || opt(p[0], SO_PEEK_OFF) != -1)
		pr_err("SO_PEEK_OFF changed: %d", opt(p[1], SO_PEEK_OFF));
	if (!(fcntl(p[1], F_GETFL) & O_NONBLOCK) || (fcntl(p[0], F_GETFL) & O_NONBLOCK))
		pr_err("O_NONBLOCK changed");
	datagen(buf, BIG, 5);
	if (recv(p[1], buf + PEEKOFF, 100, MSG_PEEK) != 100 || datachk_at(buf + PEEKOFF, 100, 5, PEEKOFF))
		pr_err("peek at the saved offset");
	off = -1;
	setsockopt(p[1], SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
	memset(buf, 0, BIG);
	for (done = 0; done < BIG; done += n) {
		n = recv(p[1], buf + done, BIG - done, 0);
		if (n <= 0)
			break;
	}
	if (done != BIG || datachk(buf, BIG, 5))
		pr_err("big queue: %zu bytes read, expected %d, first bad at %zd", done, BIG,
		       datachk_off(buf, done, 5));
	if (recv(p[1], buf, 1, 0) != -1 || errno != EAGAIN)
		pr_err("more data than queued");
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (done = 0; done < SMALL; done += n)
		if ((n = recv(p[0], buf + done, SMALL - done, 0)) <= 0)
			break;
	if (done != SMALL || datachk(buf, SMALL, 6))
		pr_err("small queue: %zu bytes", done);
	test_result();
	return 0;
}
