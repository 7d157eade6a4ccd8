/*
 * tcp_bigqueue00: an established TCP connection with megabytes queued in
 * both directions (--tcp-established).
 *
 * Both ends have 8 MB buffers (SO_SNDBUFFORCE/SO_RCVBUFFORCE) and write up
 * to 6 MB each, without reading, until the peer's window closes: several MB
 * wait in each end's receive queue and in each end's send queue.  After
 * restore every byte arrives once, in order, in both directions, and the
 * connection still carries data and closes cleanly.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX	(6 << 20)
#define BUF	(8 << 20)

static size_t fill(int fd, uint64_t seed)
{
	static char chunk[65536];
	size_t w = 0;
	int flags = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	while (w < MAX) {
		size_t n = MAX - w < sizeof(chunk) ? MAX - w : sizeof(chunk);
		ssize_t r;

		datagen_at(chunk, n, seed, w);
		r = write(fd, chunk, n);
		if (r < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (poll(&p, 1, 300) == 0)
				break;
			continue;
		}
		if (r <= 0)
			fail("fill write");
		w += r;
	}
	fcntl(fd, F_SETFL, flags);
	return w;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a4);
	int l, c, a, big = BUF / 2;
	size_t wc, wa;
	char x;

	test_init(argc, argv);
	test_lo_up();
	l = socket(AF_INET, SOCK_STREAM, 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (setsockopt(l, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) ||
	    setsockopt(c, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) ||
	    setsockopt(c, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		fail("buffers");
	if (bind(l, (struct sockaddr *)&a4, sizeof(a4)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a4, &len) || connect(c, (struct sockaddr *)&a4, len) ||
	    (a = accept(l, NULL, NULL)) < 0)
		fail("connection");
	if (setsockopt(a, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		fail("accepted end's buffer");
	close(l);
	wc = fill(c, 1);
	wa = fill(a, 2);
	test_msg("client wrote %zu bytes, server %zu\n", wc, wa);
	if (wc < (3 << 20) || wa < (3 << 20))
		fail("too little queued (%zu, %zu)", wc, wa);

	test_daemon();
	test_waitsig();

	test_expect_pattern(a, wc, 1, 0, "client to server");
	test_expect_pattern(c, wa, 2, 0, "server to client");
	if (write(c, "z", 1) != 1 || read(a, &x, 1) != 1 || x != 'z')
		pr_err("after the queues");
	if (shutdown(c, SHUT_WR) || read(a, &x, 1) != 0)
		pr_err("no EOF");
	test_result();
}
