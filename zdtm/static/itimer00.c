/*
 * itimer00: interval timers survive.
 *
 * ITIMER_REAL (SIGALRM blocked), ITIMER_VIRTUAL (SIGVTALRM handled) and
 * ITIMER_PROF (SIGPROF blocked) are armed with distinct intervals.  After
 * restore getitimer() gives the same intervals and a remaining time that is
 * not zero (still armed; zero only while its blocked SIGALRM is pending)
 * and not above the interval; the CPU-time timers did
 * not gain time; and every timer still fires (the CPU-time ones within 5 s
 * of CPU time spent spinning, so a loaded machine does not make them late).
 * Whether a timer's signal is pending when the harness looks depends on how
 * long dump and restore took: the .desc says timers are transient, so the
 * harness's state check leaves out the pending bits of SIGALRM, SIGVTALRM
 * and SIGPROF (and only those); a lost or stuck timer is caught here.
 */
#include "zdtmtst.h"

#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t vt_count;

static void vt_handler(int sig)
{
	(void)sig;
	vt_count++;
}

static long long us(const struct timeval *tv)
{
	return tv->tv_sec * 1000000LL + tv->tv_usec;
}

/* CPU time: the bound on spinning holds however loaded the machine is. */
static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static const struct {
	int which;
	const char *name;
	struct itimerval set;
} timers[] = {
	{ ITIMER_REAL, "REAL", { { 1, 300000 }, { 1, 100000 } } },
	{ ITIMER_VIRTUAL, "VIRTUAL", { { 0, 170000 }, { 0, 150000 } } },
	{ ITIMER_PROF, "PROF", { { 0, 230000 }, { 0, 210000 } } },
};

int main(int argc, char **argv)
{
	struct itimerval before[3], after[3];
	struct timespec zero = { 0, 0 }, wait = { 3, 0 };
	struct sigaction sa = {};
	volatile unsigned long spin = 0;
	sigset_t blk, one, pend;
	double t0;
	int i, vt0, alrm_pending;

	test_init(argc, argv);

	sa.sa_handler = vt_handler;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGVTALRM, &sa, NULL))
		fail("sigaction");
	sigemptyset(&blk);
	sigaddset(&blk, SIGALRM);
	sigaddset(&blk, SIGPROF);
	if (sigprocmask(SIG_BLOCK, &blk, NULL))
		fail("sigprocmask");

	for (i = 0; i < 3; i++)
		if (setitimer(timers[i].which, &timers[i].set, NULL))
			fail("setitimer %s", timers[i].name);
	for (i = 0; i < 3; i++)
		if (getitimer(timers[i].which, &before[i]))
			fail("getitimer");

	test_daemon();
	test_waitsig();

	for (i = 0; i < 3; i++)
		if (getitimer(timers[i].which, &after[i]))
			fail("getitimer");
	/*
	 * ITIMER_REAL is re-armed only when its SIGALRM is dequeued: with the
	 * signal blocked, a timer that fired (before the dump or after the
	 * restore, e.g. when C/R took longer than 1.1 s) reads 0 while
	 * SIGALRM is pending.  That is the kernel's behaviour, not a loss.
	 */
	sigpending(&pend);
	alrm_pending = sigismember(&pend, SIGALRM);
	for (i = 0; i < 3; i++) {
		long long iv_b = us(&before[i].it_interval), iv_a = us(&after[i].it_interval);
		long long v_b = us(&before[i].it_value), v_a = us(&after[i].it_value);

		test_msg("%s: interval %lld -> %lld us, value %lld -> %lld us",
			 timers[i].name, iv_b, iv_a, v_b, v_a);
		if (iv_a != iv_b)
			pr_err("%s: interval %lld us -> %lld us", timers[i].name, iv_b, iv_a);
		if (v_a <= 0 && timers[i].which == ITIMER_REAL && alrm_pending)
			test_msg("REAL: fired, re-armed when SIGALRM is taken");
		else if (v_a <= 0)
			pr_err("%s: not armed any more", timers[i].name);
		else if (v_a > iv_b && v_a > v_b)
			pr_err("%s: remaining %lld us is above interval %lld us",
			       timers[i].name, v_a, iv_b);
	}
	/* CPU-time timers only count down, unless they fired meanwhile. */
	if (us(&after[1].it_value) > us(&before[1].it_value) && vt_count == 0)
		pr_err("VIRTUAL gained time (%lld -> %lld us) without firing",
		       us(&before[1].it_value), us(&after[1].it_value));
	sigpending(&pend);
	if (us(&after[2].it_value) > us(&before[2].it_value) && !sigismember(&pend, SIGPROF))
		pr_err("PROF gained time (%lld -> %lld us) without firing",
		       us(&before[2].it_value), us(&after[2].it_value));

	/* REAL still fires: drop a stale SIGALRM, wait for a new one. */
	sigemptyset(&one);
	sigaddset(&one, SIGALRM);
	sigtimedwait(&one, NULL, &zero);
	if (sigtimedwait(&one, NULL, &wait) != SIGALRM)
		pr_err("ITIMER_REAL did not fire within %ld s", (long)wait.tv_sec);

	/* VIRTUAL and PROF fire when we burn CPU. */
	sigemptyset(&one);
	sigaddset(&one, SIGPROF);
	sigtimedwait(&one, NULL, &zero);
	vt0 = vt_count;
	t0 = cpu_now();
	for (;;) {
		int i2;

		for (i2 = 0; i2 < 100000; i2++)
			spin++;
		sigpending(&pend);
		if (vt_count > vt0 && sigismember(&pend, SIGPROF))
			break;
		if (cpu_now() - t0 > 5) {
			pr_err("CPU timers did not fire in 5 s of CPU time: VIRTUAL %s, PROF %s",
			       vt_count > vt0 ? "fired" : "did not fire",
			       sigismember(&pend, SIGPROF) ? "fired" : "did not fire");
			break;
		}
	}

	test_result();
	return 0;
}
