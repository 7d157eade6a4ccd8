/*
 * tcp_established_ext00: an established TCP connection whose peer is outside the
 * dumped tree (--tcp-established) must not notice the checkpoint and restore.
 *
 * The peer is the harness's peer daemon tcp_peer (peers/tcp_peer.py), never part of
 * the dumped tree.  In h it runs on the host's loopback, like the scenario.  In ns it
 * runs in the scenario's net namespace only (peer_netns), outside its pid namespace;
 * the tree is then dumped with --external net[INO] (its net namespace is the peer's
 * too, so it is left out of the images) and restored with --inherit-fd
 * fd[N]:net:[INO] into that same namespace (the harness opens the peer's).  Refused
 * along the way (ns): an --external net[...] naming another namespace, and a restore
 * without the namespace.
 *
 * The scenario listens on 127.0.0.1 and writes its port to tcp.port; the peer
 * connects.  Before the dump: the scenario sends N0 counted bytes, the peer checks
 * them; the peer sends N1, the scenario reads R of them and leaves the rest queued;
 * both wait until nothing is unacknowledged, then the peer blocks in read().  After
 * restore: the scenario reads the rest (offset-checked), sends N2; the peer checks
 * them and answers with its verdict byte and N3 bytes, then shuts down; the scenario
 * checks those, sees EOF, closes; the peer sees EOF with no extra byte.  A RST, a lost
 * or a duplicated byte on either side is a failure (the peer's verdict travels over
 * the connection and is also its exit status, which the harness checks).
 */
#include "zdtmtst.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define N0	20000
#define N1	30000
#define R	10000
#define N2	50000
#define N3	50000

static char buf[N2 > N3 ? N2 : N3];

static int qlen(int fd, unsigned long req)
{
	int n = -1;

	ioctl(fd, req, &n);
	return n;
}

/* read len bytes of pattern seed at offset off; 0 if right */
static int get(int fd, size_t len, uint64_t seed, size_t off)
{
	if (test_read_all(fd, buf, len) != (ssize_t)len)
		return -1;
	return datachk_at(buf, len, seed, off) ? -2 : 0;
}

static int put(int fd, size_t len, uint64_t seed)
{
	datagen(buf, len, seed);
	return test_write_all(fd, buf, len) == (ssize_t)len ? 0 : -1;
}

static void quiet(int fd)
{
	int i;

	for (i = 0; i < 5000 && qlen(fd, SIOCOUTQ) != 0; i++)
		usleep(1000);
}

/* the cr-opts.json of the ns flavor: the net namespace stays the peer's */
static void external_netns(void)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		fail("stat /proc/self/ns/net");
	test_write_text("cr-opts.json", "{\"dump\": [\"--external\", \"net[%1$lu]\"],\n"
			" \"inherit\": [{\"resource\": \"net:[%1$lu]\", \"netns_of\": \"peer\"}],\n"
			" \"refuse\": [{\"step\": \"dump\", \"opts\": [\"--tcp-established\", \"--external\", \"net[1]\"],"
			" \"says\": \"--external net[1]: matches nothing\"},\n"
			"  {\"step\": \"restore\", \"opts\": [\"--tcp-established\"], \"says\": \"--inherit-fd fd[N]:net:[%1$lu]\"}]}\n",
			(unsigned long)st.st_ino);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a4);
	int l, fd, rc, i;
	char verdict;

	test_init(argc, argv);
	/* with peer_netns in the ns flavor the peer starts after us: wait for it */
	for (i = 0; i < 30000 && access("peer.ready", F_OK); i++)
		usleep(1000);
	if (access("peer.ready", F_OK))
		fail("the peer is not ready");
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a4, sizeof(a4)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a4, &len))
		fail("listener");
	test_write_text("tcp.port", "%d\n", ntohs(a4.sin_port));
	fd = accept(l, NULL, NULL);
	if (fd < 0)
		fail("accept");
	close(l);
	if (put(fd, N0, 1))
		fail("send N0");
	if (get(fd, R, 2, 0))
		fail("first bytes from the peer");
	for (i = 0; i < 5000 && qlen(fd, SIOCINQ) != N1 - R; i++)
		usleep(1000);
	if (qlen(fd, SIOCINQ) != N1 - R)
		fail("the peer's bytes did not all arrive");
	quiet(fd);
	usleep(100000);
	if (getpid() == 1)
		external_netns();

	test_daemon();
	test_waitsig();

	if ((rc = get(fd, N1 - R, 2, R)))
		pr_err("bytes the peer sent before the dump: %d", rc);
	if (put(fd, N2, 3))
		pr_err("send after restore");
	if (read(fd, &verdict, 1) != 1)
		pr_err("no verdict from the peer");
	else if (verdict != 'P')
		pr_err("the peer says the bytes after restore were wrong");
	if ((rc = get(fd, N3, 4, 0)))
		pr_err("bytes the peer sent after restore: %d", rc);
	if ((rc = read(fd, &verdict, 1)) != 0)
		pr_err("expected EOF from the peer, got %d", rc);
	close(fd);
	test_result();
	return 0;
}
