/*
 * itimer01: an ITIMER_REAL that fired while SIGALRM is blocked survives.
 *
 * The kernel re-arms ITIMER_REAL only when its SIGALRM is dequeued, so a
 * timer that fired with the signal blocked reads value 0 with its interval
 * kept, SIGALRM pending.  The timer is armed (10 ms, interval 1 s) with
 * SIGALRM blocked and the test waits until it fired, before the dump.
 * After restore the interval must still be 1 s (value 0, SIGALRM pending),
 * and once SIGALRM is taken the timer must fire again within 3 s.
 */
#include "zdtmtst.h"

#include <sys/time.h>

int main(int argc, char **argv)
{
	struct itimerval set = { { 1, 0 }, { 0, 10000 } }, now;
	struct timespec zero = { 0, 0 }, wait = { 3, 0 }, pause = { 0, 10000 };
	sigset_t alrm, pend;
	int i;

	test_init(argc, argv);
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	if (sigprocmask(SIG_BLOCK, &alrm, NULL))
		fail("sigprocmask");
	if (setitimer(ITIMER_REAL, &set, NULL))
		fail("setitimer");
	for (i = 0; i < 500; i++) {
		sigpending(&pend);
		if (sigismember(&pend, SIGALRM))
			break;
		nanosleep(&pause, NULL);
	}
	if (!sigismember(&pend, SIGALRM))
		fail("the timer did not fire before the dump");
	if (getitimer(ITIMER_REAL, &now) || now.it_value.tv_sec || now.it_value.tv_usec ||
	    now.it_interval.tv_sec != 1)
		fail("a fired timer reads %ld.%06ld / %ld.%06ld", (long)now.it_value.tv_sec,
		     (long)now.it_value.tv_usec, (long)now.it_interval.tv_sec, (long)now.it_interval.tv_usec);

	test_daemon();
	test_waitsig();

	if (getitimer(ITIMER_REAL, &now))
		fail("getitimer");
	test_msg("after restore: value %ld.%06ld, interval %ld.%06ld", (long)now.it_value.tv_sec,
		 (long)now.it_value.tv_usec, (long)now.it_interval.tv_sec, (long)now.it_interval.tv_usec);
	if (now.it_interval.tv_sec != 1 || now.it_interval.tv_usec)
		pr_err("the interval is lost: %ld.%06ld", (long)now.it_interval.tv_sec, (long)now.it_interval.tv_usec);
	sigpending(&pend);
	if (!sigismember(&pend, SIGALRM))
		pr_err("SIGALRM is not pending any more");
	if (sigtimedwait(&alrm, NULL, &zero) != SIGALRM)
		pr_err("the pending SIGALRM could not be taken");
	if (sigtimedwait(&alrm, NULL, &wait) != SIGALRM)
		pr_err("ITIMER_REAL did not fire again within %ld s", (long)wait.tv_sec);
	test_result();
	return 0;
}
