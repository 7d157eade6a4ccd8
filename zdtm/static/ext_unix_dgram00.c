/*
 * ext_unix_dgram00: a datagram socket connected to a syslog-like daemon outside
 * the dumped tree (the peer log_daemon, bound at WORKDIR/log.sock) is dumped with
 * the bare --ext-unix-sk and connected to the same daemon again on restore.
 *
 * Before the dump: "before" is sent, and a dump without --ext-unix-sk must be
 * refused naming the socket (cr-opts.json).  After restore: the socket is still
 * connected to log.sock and "after" reaches the daemon, whose verdict (exactly
 * "before" then "after") is part of the item's.
 */
#include "zdtmtst.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sun;
	int sk;

	test_init(argc, argv);
	sk = test_unix_connect("log.sock", SOCK_DGRAM, sun.sun_path);
	if (send(sk, "before", 6, 0) != 6)
		fail("send before");
	test_write_text("cr-opts.json",
			"{\"refuse\": [{\"step\": \"dump\", \"opts\": [], \"says\": \"unix socket %lu\"}]}\n",
			test_fd_inode(sk));

	test_daemon();
	test_waitsig();

	test_check_unix_peer(sk, sun.sun_path);
	if (send(sk, "after", 5, 0) != 5)
		pr_err("send after restore");
	test_result();
	return 0;
}
