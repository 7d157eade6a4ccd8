/*
 * action_script00: every action script action is run once, in order, with the
 * right environment (.desc 'action_script', given to dump and restore).
 *
 * The script appends "ACTION DIR PSTREE NETNS ARGC" to actions.log in the
 * work dir: DIR/PSTREE say whether CRTOOLS_IMAGE_DIR is a directory and holds
 * pstree.img, NETNS is the net namespace of CRTOOLS_INIT_PID ("-" when unset),
 * ARGC its argument count, NET (at post-dump, pre-resume and post-resume)
 * whether a TCP connection to the test's listener on 127.0.0.1:8071, made
 * from inside the namespace, got through ("open") or not ("locked").  After
 * restore the test reads the log: the dump's pre-dump (no pid, no images yet),
 * network-lock and post-dump (the test's namespace then, images written,
 * locked), then the restore's pre-restore (no pid), network-lock,
 * setup-namespaces, post-setup-namespaces, post-restore, pre-resume (locked),
 * network-unlock, post-resume (open) (the test's namespace now); no arguments
 * anywhere.
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8071) };
	char ns0[64], ns1[64], expect[2048], *got = NULL;
	int lsk, one = 1;
	ssize_t n;

	test_init(argc, argv);
	test_lo_up();
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	if (lsk < 0 || setsockopt(lsk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lsk, (struct sockaddr *)&a, sizeof(a)) || listen(lsk, 4))
		fail("listen on 127.0.0.1:8071");
	n = readlink("/proc/self/ns/net", ns0, sizeof(ns0) - 1);
	if (n < 0)
		fail("readlink /proc/self/ns/net");
	ns0[n] = '\0';
	unlink("actions.log");

	test_daemon();
	test_waitsig();

	n = readlink("/proc/self/ns/net", ns1, sizeof(ns1) - 1);
	if (n < 0)
		fail("readlink /proc/self/ns/net");
	ns1[n] = '\0';
	snprintf(expect, sizeof(expect),
		 "pre-dump yes no - 0 -\n"
		 "network-lock yes no %s 0 -\n"
		 "post-dump yes yes %s 0 locked\n"
		 "pre-restore yes yes - 0 -\n"
		 "network-lock yes yes %s 0 -\n"
		 "setup-namespaces yes yes %s 0 -\n"
		 "post-setup-namespaces yes yes %s 0 -\n"
		 "post-restore yes yes %s 0 -\n"
		 "pre-resume yes yes %s 0 locked\n"
		 "network-unlock yes yes %s 0 -\n"
		 "post-resume yes yes %s 0 open\n",
		 ns0, ns0, ns1, ns1, ns1, ns1, ns1, ns1, ns1);
	if (test_read_file("actions.log", &got) < 0)
		fail("read actions.log");
	if (strcmp(got, expect))
		pr_err("the action scripts ran as\n%sinstead of\n%s", got, expect);
	test_result();
	return 0;
}
