/*
 * ext_unix_inherit00: a stream unix connection to a server outside the dumped
 * tree (the peer line_server), dumped with --external unix[ID] (the same as
 * --ext-unix-sk ID); at restore the
 * CALLER makes the connection and hands it in with --inherit-fd
 * fd[N]:socket:[ID] (the harness connects to peer.sock, cr-opts.json "inherit").
 * The restore is given no --ext-unix-sk, so without the inherited fd it would
 * be refused (a stream connected outside must be told what to do).
 *
 * Before the dump "before" is answered; after restore the socket is the
 * harness's connection (connected to peer.sock, a different socket) and
 * "after" is answered.  The server's verdict is part of the item's.
 */
#include "zdtmtst.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sun;
	unsigned long ino;
	struct stat now;
	int sk;

	test_init(argc, argv);
	sk = test_unix_connect("peer.sock", SOCK_STREAM, sun.sun_path);
	if (test_ask_line(sk, "before"))
		fail("the server did not answer");
	ino = test_fd_inode(sk);
	test_write_text("cr-opts.json", "{\"dump\": [\"--external\", \"unix[%lu]\"], "
			"\"inherit\": [{\"resource\": \"socket:[%lu]\", \"connect\": \"peer.sock\"}], "
			"\"refuse\": [{\"step\": \"restore\", \"opts\": [], \"says\": \"--ext-unix-sk %lu\"}]}\n",
			ino, ino, ino);

	test_daemon();
	test_waitsig();

	if (fstat(sk, &now))
		pr_err("fstat after restore");
	else if (!S_ISSOCK(now.st_mode) || now.st_ino == ino)
		pr_err("fd %d is not a new socket (inode %lu)", sk, (unsigned long)now.st_ino);
	test_check_unix_peer(sk, sun.sun_path);
	test_ask_line(sk, "after");
	test_result();
	return 0;
}
