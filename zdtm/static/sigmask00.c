/*
 * sigmask00: the blocked signal set survives, and is effective: a blocked
 * signal raised after restore stays pending until it is unblocked.
 */
#include "zdtmtst.h"

#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_rt;

static void handler(int sig)
{
	if (sig == SIGUSR1)
		got_usr1++;
	else
		got_rt++;
}

static char *status_line(const char *key)
{
	char *s, *p, *r;

	if (test_read_file("/proc/self/status", &s) < 0)
		fail("read /proc/self/status");
	p = strstr(s, key);
	if (!p)
		fail("no %s in /proc/self/status", key);
	r = strndup(p, strcspn(p, "\n"));
	free(s);
	return r;
}

int main(int argc, char **argv)
{
	const int sigs[] = { SIGUSR1, SIGHUP, SIGPIPE, SIGCHLD, SIGWINCH, SIGQUIT,
			     SIGRTMIN + 5, SIGRTMIN + 11, SIGRTMAX };
	sigset_t set, cur;
	char *blk_before, *blk_after;
	struct sigaction sa = {};
	int sig;
	size_t i;

	test_init(argc, argv);

	sa.sa_handler = handler;
	if (sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGRTMIN + 5, &sa, NULL))
		fail("sigaction");

	sigemptyset(&set);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&set, sigs[i]);
	if (sigprocmask(SIG_SETMASK, &set, NULL))
		fail("sigprocmask");
	blk_before = status_line("SigBlk:");

	test_daemon();
	test_waitsig();

	blk_after = status_line("SigBlk:");
	if (strcmp(blk_before, blk_after))
		pr_err("/proc/self/status: '%s' -> '%s'", blk_before, blk_after);
	if (sigprocmask(SIG_BLOCK, NULL, &cur))
		fail("sigprocmask");
	for (sig = 1; sig <= 64; sig++)
		if (sigismember(&cur, sig) != sigismember(&set, sig))
			pr_err("signal %d: blocked %d, expected %d", sig,
			       sigismember(&cur, sig), sigismember(&set, sig));

	/* The mask is effective. */
	raise(SIGUSR1);
	raise(SIGRTMIN + 5);
	if (got_usr1 || got_rt)
		pr_err("a blocked signal was delivered");
	sigemptyset(&cur);
	sigaddset(&cur, SIGUSR1);
	sigaddset(&cur, SIGRTMIN + 5);
	sigprocmask(SIG_UNBLOCK, &cur, NULL);
	if (got_usr1 != 1 || got_rt != 1)
		pr_err("unblocked signals delivered %d/%d times, expected 1/1",
		       got_usr1, got_rt);

	test_result();
	return 0;
}
