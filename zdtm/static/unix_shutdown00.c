/*
 * unix_shutdown00: shutdown states and a connection whose peer is closed.
 *
 * Pair 1: one end did shutdown(SHUT_WR) after queueing data.  Pair 2: one
 * end did shutdown(SHUT_RD).  Pair 3: data was queued, then the sending end
 * was closed.  After restore: the reader of pair 1 gets the data and then
 * EOF while the other direction still works; writing on the shut end gives
 * EPIPE; pair 2 behaves the same way mirrored; pair 3 reads its data, then
 * EOF, and writing gives EPIPE.
 */
#include "zdtmtst.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[4096];

int main(int argc, char **argv)
{
	int p1[2], p2[2], p3[2];

	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p1) || socketpair(AF_UNIX, SOCK_STREAM, 0, p2) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p3))
		fail("socketpair");
	datagen(buf, 1500, 1);
	if (write(p1[0], buf, 1500) != 1500 || shutdown(p1[0], SHUT_WR))
		fail("pair 1");
	if (shutdown(p2[0], SHUT_RD))
		fail("pair 2");
	datagen(buf, 700, 3);
	if (write(p3[0], buf, 700) != 700 || write(p3[0], buf, 70) != 70)
		fail("pair 3");
	close(p3[0]);

	test_daemon();
	test_waitsig();

	/* pair 1 */
	if (test_read_all(p1[1], buf, 1500) != 1500 || datachk(buf, 1500, 1))
		pr_err("pair 1: queued data");
	if (read(p1[1], buf, 1) != 0)
		pr_err("pair 1: no EOF after the data");
	if (write(p1[0], "x", 1) != -1 || errno != EPIPE)
		pr_err("pair 1: write on the shut end does not give EPIPE");
	if (write(p1[1], "abc", 3) != 3 || read(p1[0], buf, 10) != 3 || memcmp(buf, "abc", 3))
		pr_err("pair 1: the other direction is broken");
	/* pair 2 */
	if (read(p2[0], buf, 1) != 0)
		pr_err("pair 2: read on the SHUT_RD end does not give EOF");
	if (write(p2[1], "x", 1) != -1 || errno != EPIPE)
		pr_err("pair 2: write towards the SHUT_RD end does not give EPIPE");
	if (write(p2[0], "abc", 3) != 3 || read(p2[1], buf, 10) != 3 || memcmp(buf, "abc", 3))
		pr_err("pair 2: the other direction is broken");
	/* pair 3 */
	if (read(p3[1], buf, sizeof(buf)) != 700 || datachk(buf, 700, 3))
		pr_err("pair 3: first message");
	if (read(p3[1], buf, sizeof(buf)) != 70 || datachk(buf, 70, 3))
		pr_err("pair 3: second message");
	if (read(p3[1], buf, 1) != 0)
		pr_err("pair 3: no EOF after the data");
	if (write(p3[1], "x", 1) != -1 || errno != EPIPE)
		pr_err("pair 3: write to a closed peer does not give EPIPE");

	test_result();
	return 0;
}
