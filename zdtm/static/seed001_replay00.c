/*
 * seed001_replay00: the seed-001 workflow.  This process is server A: it keeps
 * a running total of the numbers client B (the peer seed001_b, outside the
 * tree) sends over a stream unix connection and answers "total N".
 *
 * B sends 5, 7, 11, 13; after each answer the harness checkpoints A with
 * --leave-running --ext-unix-sk ID into its own directory (.desc 'checkpoints').
 * Then A is dumped for good, and the checkpoint taken after the SECOND message
 * is restored ('restore_checkpoint') with --ext-unix-sk ID:WORKDIR/b2.sock, a
 * fresh B that sends 100 and 1 and closes.  A must have continued from its
 * second message: after EOF the numbers it has seen are exactly 5, 7, 100, 1
 * (11 and 13 happened in a future that the restore undid) and its answers were
 * 5, 12, 112, 113 (B checks those too).  Nothing is printed until then: the
 * outfile offset is part of the state compared after restore.
 */
#include "zdtmtst.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXN 16

static long seen[MAXN];
static int nseen;

/* one line; 0 on EOF; SIGTERM (EINTR) does not interrupt the conversation */
static int get_line(int sk, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(sk, buf + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -1 : 0;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return 1;
}

int main(int argc, char **argv)
{
	static const long want[] = { 5, 7, 100, 1 };
	char line[64], cwd[256], out[64];
	long total = 0;
	int sk, r, i, len;

	test_init(argc, argv);
	if (!getcwd(cwd, sizeof(cwd)))
		fail("getcwd");
	sk = test_unix_connect("b1.sock", SOCK_STREAM, NULL);
	test_write_text("cr-opts.json", "{\"dump\": [\"--ext-unix-sk\", \"%1$lu\"], "
			"\"restore\": [\"--ext-unix-sk\", \"%1$lu:%2$s/b2.sock\"]}\n",
			test_fd_inode(sk), cwd);

	test_daemon();

	while ((r = get_line(sk, line, sizeof(line))) > 0) {
		if (nseen == MAXN)
			fail("too many messages");
		seen[nseen++] = strtol(line, NULL, 10);
		total += seen[nseen - 1];
		len = snprintf(out, sizeof(out), "total %ld\n", total);
		if (test_write_all(sk, out, len) != len)
			break;
	}
	if (r < 0)
		pr_err("reading from B");

	test_waitsig();

	if (nseen != 4)
		pr_err("saw %d numbers, expected 4 (5, 7, then 100, 1 after the replay)", nseen);
	for (i = 0; i < nseen && i < 4; i++)
		if (seen[i] != want[i])
			pr_err("number %d was %ld, expected %ld", i + 1, seen[i], want[i]);
	test_result();
	return 0;
}
