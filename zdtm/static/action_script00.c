/*
 * action_script00: every action script action is run once, in order, with the
 * right environment (.desc 'action_script', given to dump and restore).
 *
 * The script appends "ACTION DIR PSTREE NETNS ARGC" to actions.log in the
 * work dir: DIR/PSTREE say whether CRTOOLS_IMAGE_DIR is a directory and holds
 * pstree.img, NETNS is the net namespace of CRTOOLS_INIT_PID ("-" when unset),
 * ARGC its argument count.  After restore the test reads the log: the dump's
 * pre-dump (no pid, no images yet), network-lock and post-dump (the test's
 * namespace then, images written), then the restore's pre-restore (no pid),
 * network-lock, setup-namespaces, post-setup-namespaces, post-restore,
 * pre-resume, network-unlock, post-resume (the test's namespace now); no
 * arguments anywhere.
 */
#include "zdtmtst.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char ns0[64], ns1[64], expect[2048], *got = NULL;
	ssize_t n;

	test_init(argc, argv);
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
		 "pre-dump yes no - 0\n"
		 "network-lock yes no %s 0\n"
		 "post-dump yes yes %s 0\n"
		 "pre-restore yes yes - 0\n"
		 "network-lock yes yes %s 0\n"
		 "setup-namespaces yes yes %s 0\n"
		 "post-setup-namespaces yes yes %s 0\n"
		 "post-restore yes yes %s 0\n"
		 "pre-resume yes yes %s 0\n"
		 "network-unlock yes yes %s 0\n"
		 "post-resume yes yes %s 0\n",
		 ns0, ns0, ns1, ns1, ns1, ns1, ns1, ns1, ns1);
	if (test_read_file("actions.log", &got) < 0)
		fail("read actions.log");
	if (strcmp(got, expect))
		pr_err("the action scripts ran as\n%sinstead of\n%s", got, expect);
	test_result();
	return 0;
}
