/*
 * tcp_lock00: a TCP connection from the tree to a peer outside it that keeps
 * sending through the dump, the time the tree is down and the restore
 * (--tcp-established).  The network lock (refcr/net/netlock.py) must hold the
 * peer off: no RST, and after restore every byte the peer sent arrives, once
 * and in order.
 *
 * The peer is the harness's peer daemon tcp_streamer (peers/tcp_streamer.py):
 * it listens on 127.0.0.1 (port in peer.port) and sends counted bytes in 1 KiB
 * chunks every 5 ms until it reads 'S' (the socket's receive buffer is set, so
 * it holds what comes while the tree is frozen and does not autotune).  In h the lock is per connection (the
 * tree shares the host's namespace); in ns the peer runs in the scenario's net
 * namespace (peer_netns), the tree is dumped with --external net[INO] and
 * restored into that namespace (as tcp_established_ext00), so the lock is per
 * connection there too.
 *
 * The scenario reads and checks the stream all the time (also while it waits
 * for SIGTERM).  After restore it sends 'S', reads to EOF checking every byte
 * at its offset, sends the number of bytes it got (8 bytes, little-endian:
 * the peer checks it is the number it sent) and closes.  A RST on either side,
 * a lost, duplicated or wrong byte is a failure.
 */
#include "zdtmtst.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEED	7

static char buf[65536];
static size_t got;		/* stream bytes read and checked so far */

/* read what is there within ms; 1 on data, 0 on nothing, -1 on EOF, -2 on error */
static int take(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	n = read(fd, buf, sizeof(buf));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -2;
	if (n == 0)
		return -1;
	if (datachk_at(buf, n, SEED, got)) {
		pr_err("wrong bytes at offset %zu", got);
		return -2;
	}
	got += n;
	return 1;
}

/* the cr-opts.json of the ns flavor: the net namespace stays the peer's */
static void external_netns(void)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		fail("stat /proc/self/ns/net");
	test_write_text("cr-opts.json", "{\"dump\": [\"--external\", \"net[%1$lu]\"],\n"
			" \"inherit\": [{\"resource\": \"net:[%1$lu]\", \"netns_of\": \"peer\"}]}\n",
			(unsigned long)st.st_ino);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint64_t count;
	size_t before;
	char port[16] = "";
	int fd, i, rc = 0;
	FILE *f;

	test_init(argc, argv);
	for (i = 0; i < 30000 && access("peer.ready", F_OK); i++)
		usleep(1000);
	f = fopen("peer.port", "r");
	if (!f || !fgets(port, sizeof(port), f))
		fail("the peer is not ready (peer.port)");
	fclose(f);
	a4.sin_port = htons(atoi(port));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	/* a fixed receive buffer: autotuning would change it while the stream runs */
	i = 1 << 20;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &i, sizeof(i)))
		fail("socket");
	if (connect(fd, (struct sockaddr *)&a4, sizeof(a4)))
		fail("connect to the peer");
	while (got < 100000 && (rc = take(fd, 1000)) >= 0)
		;
	if (rc < 0 || got < 100000)
		fail("the peer does not stream");
	if (getpid() == 1)
		external_netns();

	test_daemon();
	while (test_go() && (rc = take(fd, 10)) >= 0)
		;
	if (rc < 0)
		fail("the stream broke before the restore was checked (%d after %zu bytes)", rc, got);
	before = got;
	if (write(fd, "S", 1) != 1)
		fail("send 'S'");
	for (i = 0; i < 6000 && (rc = take(fd, 10)) >= 0; i++)
		;
	if (rc != -1)
		fail("no EOF from the peer (%d after %zu bytes)", rc, got);
	test_msg("%zu bytes before SIGTERM, %zu in all\n", before, got);
	count = got;
	if (write(fd, &count, sizeof(count)) != sizeof(count))
		fail("send the count");
	close(fd);
	test_result();
	return 0;
}
