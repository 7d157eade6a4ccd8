/*
 * shell_job00: a job of an interactive shell (--shell-job) moves to the terminal
 * of whoever restores it.
 *
 * The harness runs a small shell on a pexpect pty and starts this scenario as its
 * job (flag shell_job: the library neither forks nor calls setsid(), stdin stays
 * the terminal, see harness/shelljob.py).  The job makes itself a process group
 * and the terminal's foreground group, as a shell would, and answers every line
 * X typed on the terminal with "answer:X" in upper case.  The harness types
 * "before", dumps with --shell-job, runs refcr restore --shell-job on a NEW pty,
 * types "after" there (and checks the job's controlling terminal is the new
 * one).  After SIGTERM the job checks: it read exactly "before" and "after", fd 0
 * is a terminal whose foreground group is its own group, it leads its group but
 * not its session (the caller's).  Refused on the way: a dump and a restore
 * without --shell-job (the job survives the refused dump unchanged).
 */
#include "zdtmtst.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static char lines[2][32];
static int nlines;

static void answer(const char *line, size_t n)
{
	char out[64] = "answer:";
	size_t i, len = strlen(out);

	for (i = 0; i < n && len < sizeof(out) - 2; i++)
		out[len++] = toupper((unsigned char)line[i]);
	out[len++] = '\n';
	if (test_write_all(0, out, len) != (ssize_t)len)
		pr_err("answer on the terminal");
	if (nlines < 2)
		snprintf(lines[nlines], sizeof(lines[0]), "%.*s", (int)n, line);
	nlines++;
}

int main(int argc, char **argv)
{
	sighandler_t old;
	char buf[256];
	ssize_t n;

	test_init(argc, argv);
	if (!isatty(0))
		fail("stdin is not a terminal (not started as a shell job?)");
	if (setpgid(0, 0))
		fail("setpgid");
	old = signal(SIGTTOU, SIG_IGN);
	if (tcsetpgrp(0, getpgrp()))
		fail("tcsetpgrp");
	signal(SIGTTOU, old);

	/* without --shell-job the terminal is refused, at dump and at restore */
	test_write_text("cr-opts.json", "{\"refuse\": ["
			"{\"step\": \"dump\", \"opts\": [], \"says\": \"--shell-job\"}, "
			"{\"step\": \"restore\", \"opts\": [], \"says\": \"restore with --shell-job\"}]}\n");

	test_daemon();

	while (!test_sigterm_seen) {
		n = read(0, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pr_err("read from the terminal: %zd", n);
			break;
		}
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		answer(buf, n);
	}
	test_waitsig();

	if (nlines != 2 || strcmp(lines[0], "before") || strcmp(lines[1], "after"))
		pr_err("read %d lines ('%s', '%s'), expected 'before' and 'after'", nlines, lines[0], lines[1]);
	if (!isatty(0))
		pr_err("fd 0 is no longer a terminal");
	if (tcgetpgrp(0) != getpgrp())
		pr_err("foreground group %d, expected mine (%d)", tcgetpgrp(0), getpgrp());
	if (getpgrp() != getpid())
		pr_err("group %d, expected my own", getpgrp());
	if (getsid(0) == getpid())
		pr_err("leads its session: not a job of the caller's");
	test_result();
	return 0;
}
