/*
 * action_script_fails00 (crfail): an action script that exits non-zero at
 * post-dump fails the dump; the tree is resumed and its network unlocked.
 *
 * The script (.desc 'action_script') appends each action to actions.log in
 * the work dir and exits 3 at post-dump.  The test listens on 127.0.0.1 in
 * its own network namespace.  After the failed dump: the log says pre-dump,
 * network-lock, post-dump, network-unlock (nothing of a restore), and a new
 * TCP connection to the listener is accepted at once (no packet is dropped
 * any more).
 */
#include "zdtmtst.h"
#include "znetns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8061) };
	static const char expect[] = "pre-dump\nnetwork-lock\npost-dump\nnetwork-unlock\n";
	int lsk, err, s, one = 1;
	char *got = NULL;

	test_init(argc, argv);
	test_lo_up();
	unlink("actions.log");
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	if (lsk < 0 || setsockopt(lsk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lsk, (struct sockaddr *)&a, sizeof(a)) || listen(lsk, 4))
		fail("listen on 127.0.0.1:8061");

	test_daemon();
	test_waitsig();

	if (test_read_file("actions.log", &got) < 0)
		fail("read actions.log");
	if (strcmp(got, expect))
		pr_err("the action scripts ran as\n%sinstead of\n%s", got, expect);
	err = test_tcp_probe("127.0.0.1", 8061, 1000);
	if (err)
		pr_err("connect to the listener after the failed dump: %s", strerror(err));
	else if ((s = accept(lsk, NULL, NULL)) < 0)
		pr_err("accept after the failed dump");
	else
		close(s);
	test_result();
	return 0;
}
