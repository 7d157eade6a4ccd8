/*
 * itimer_fired00: a periodic ITIMER_REAL that fired while SIGALRM is
 * blocked does not get stuck.
 *
 * The kernel re-arms such a timer only when its SIGALRM is dequeued: before
 * the dump getitimer reads 0 left, SIGALRM is pending.  After restore the
 * same holds (0 left or less than the interval, SIGALRM pending), and once
 * the SIGALRM is taken the timer fires again within its interval.
 */
#include "zdtmtst.h"

#include <sys/time.h>
#include <time.h>

int main(int argc, char **argv)
{
	struct itimerval it = { { 0, 400000 }, { 0, 10000 } }, now;
	struct timespec wait = { 2, 0 }, nap = { 0, 100000000 };
	sigset_t blk, pend;

	test_init(argc, argv);
	sigemptyset(&blk);
	sigaddset(&blk, SIGALRM);
	sigprocmask(SIG_BLOCK, &blk, NULL);
	if (setitimer(ITIMER_REAL, &it, NULL))
		fail("setitimer");
	nanosleep(&nap, NULL);
	if (getitimer(ITIMER_REAL, &now) || now.it_value.tv_sec || now.it_value.tv_usec)
		fail("the timer did not fire as planned");

	test_daemon();
	test_waitsig();

	if (getitimer(ITIMER_REAL, &now))
		pr_err("getitimer: %m");
	else if (now.it_interval.tv_usec != 400000 || now.it_interval.tv_sec)
		pr_err("interval %ld.%06ld", (long)now.it_interval.tv_sec, (long)now.it_interval.tv_usec);
	sigpending(&pend);
	if (!sigismember(&pend, SIGALRM))
		pr_err("SIGALRM is not pending any more");
	if (sigtimedwait(&blk, NULL, &wait) != SIGALRM)
		pr_err("no SIGALRM to take");
	if (sigtimedwait(&blk, NULL, &wait) != SIGALRM)
		pr_err("ITIMER_REAL is stuck: no SIGALRM within %ld s of taking the last one", (long)wait.tv_sec);
	test_result();
	return 0;
}
