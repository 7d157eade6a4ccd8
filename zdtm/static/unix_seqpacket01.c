/*
 * unix_seqpacket01: seqpacket sockets in the states stream ones are tested
 * in: unconnected and unbound, bound and not listening, connected with the
 * peer closed (messages still queued), shut down for writing.
 *
 * After restore: the unconnected ones are still unconnected (ENOTCONN on
 * send) with their name; the released one reads its messages with their
 * boundaries and then end of file; the shut-down one fails to send (EPIPE)
 * while its peer still sends to it.
 */
#include "zdtmtst.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NAME	"unix_seqpacket01.sock"

int main(int argc, char **argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX, .sun_path = NAME }, got;
	socklen_t l = sizeof(got);
	int lone, named, p[2], q[2];
	char buf[64];

	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	unlink(NAME);
	lone = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	named = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (bind(named, (struct sockaddr *)&a, sizeof(a)))
		fail("bind");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q))
		fail("socketpair");
	if (send(p[1], "one", 3, 0) != 3 || send(p[1], "second", 6, 0) != 6)
		fail("send");
	close(p[1]);
	if (shutdown(q[0], SHUT_WR) || send(q[1], "to q0", 5, 0) != 5)
		fail("shutdown");

	test_daemon();
	test_waitsig();

	if (send(lone, "x", 1, 0) != -1 || errno != ENOTCONN)
		pr_err("the unconnected socket is connected");
	if (send(named, "x", 1, 0) != -1 || errno != ENOTCONN)
		pr_err("the bound socket is connected");
	memset(&got, 0, sizeof(got));
	if (getsockname(named, (struct sockaddr *)&got, &l) || strcmp(got.sun_path, NAME))
		pr_err("name lost");
	if (recv(p[0], buf, sizeof(buf), 0) != 3 || memcmp(buf, "one", 3) ||
	    recv(p[0], buf, sizeof(buf), 0) != 6 || memcmp(buf, "second", 6))
		pr_err("messages of the released socket");
	if (recv(p[0], buf, sizeof(buf), MSG_DONTWAIT) != 0)
		pr_err("no end of file after the messages");
	if (send(q[0], "x", 1, 0) != -1 || errno != EPIPE)
		pr_err("shut down socket sends");
	if (recv(q[0], buf, sizeof(buf), MSG_DONTWAIT) != 5 || memcmp(buf, "to q0", 5))
		pr_err("message to the shut down socket");
	if (send(q[1], "more", 4, 0) != 4 || recv(q[0], buf, sizeof(buf), 0) != 4)
		pr_err("peer of the shut down socket");
	unlink(NAME);
	test_result();
}
