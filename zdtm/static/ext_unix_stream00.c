/*
 * ext_unix_stream00: a stream unix connection to a server outside the dumped tree
 * (the peer line_server at WORKDIR/peer.sock).  CRIU refuses to dump half of a
 * stream connection; refcr dumps it when --ext-unix-sk ID names the socket, and
 * on restore --ext-unix-sk ID connects it to the same server again.
 *
 * Before the dump: "before" is answered.  After restore: the socket is connected
 * to peer.sock (a new connection, as the server sees it) and "after" is answered.
 * The server's verdict (two connections, "before" then EOF, then "after") is part
 * of the item's.
 */
#include "zdtmtst.h"

#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sun;
	unsigned long ino;
	int sk;

	test_init(argc, argv);
	sk = test_unix_connect("peer.sock", SOCK_STREAM, sun.sun_path);
	if (test_ask_line(sk, "before"))
		fail("the server did not answer");
	ino = test_fd_inode(sk);
	test_write_text("cr-opts.json", "{\"dump\": [\"--ext-unix-sk\", \"%lu\"], "
			"\"restore\": [\"--ext-unix-sk\", \"%lu\"]}\n", ino, ino);

	test_daemon();
	test_waitsig();

	test_check_unix_peer(sk, sun.sun_path);
	test_ask_line(sk, "after");
	test_result();
	return 0;
}
