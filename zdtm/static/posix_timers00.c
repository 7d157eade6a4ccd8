/*
 * posix_timers00: POSIX timers survive with their ids, clocks, notification
 * and remaining time.
 *
 * Eight timers are created and two deleted (so ids are sparse): REALTIME
 * (SIGUSR1, blocked, one-shot), MONOTONIC (SIGRTMIN+1 handled, periodic,
 * sigev_value checked at delivery), BOOTTIME (SIGEV_NONE, periodic),
 * PROCESS_CPUTIME (SIGUSR2), a MONOTONIC SIGEV_THREAD_ID timer to a thread
 * (SIGRTMIN+2, the handler checks it runs in that thread), a
 * THREAD_CPUTIME timer created in that thread, and a disarmed one.  A
 * REALTIME_ALARM timer is added when the kernel allows it (it needs an RTC).
 * After restore: same ids, intervals, armed/disarmed, remaining time not
 * above what it was, the periodic ones still fire, and the next timer_create
 * gets the id it would have got without C/R: one past the last one made
 * (timer 7).  The ALARM attempt comes first, so a failed one leaves a hole
 * at id 0 when the kernel got as far as taking an id (EOPNOTSUPP, no RTC)
 * and none when it did not (EAGAIN: the preallocated signal was over the
 * user's RLIMIT_SIGPENDING count while other tests queue signals).  The
 * harness compares /proc/PID/timers.
 */
#include "zdtmtst.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOCK_REALTIME_ALARM
#define CLOCK_REALTIME_ALARM 8
#endif
#define NT	8
#define SIGV(i)	((void *)(0x5eed0000UL + (i)))

static timer_t ids[NT + 1];
static int alive[NT + 1];
static int nt = NT;
static volatile sig_atomic_t rt1_count, rt1_bad, rt2_count, rt2_bad;
static volatile pid_t thr_tid;
static volatile int go;

static void rt1(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	if (si->si_code != SI_TIMER || si->si_value.sival_ptr != SIGV(1))
		rt1_bad++;
	rt1_count++;
}

static void rt2(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	if (syscall(SYS_gettid) != thr_tid || si->si_value.sival_ptr != SIGV(4))
		rt2_bad++;
	rt2_count++;
}

static void make(int i, clockid_t clk, int notify, int sig, long val_ms, long int_ms)
{
	struct sigevent sev = {};
	struct itimerspec its = {
		.it_interval = { int_ms / 1000, int_ms % 1000 * 1000000 },
		.it_value = { val_ms / 1000, val_ms % 1000 * 1000000 },
	};

	sev.sigev_notify = notify;
	sev.sigev_signo = sig;
	sev.sigev_value.sival_ptr = SIGV(i);
	if (notify == SIGEV_THREAD_ID)
		sev._sigev_un._tid = thr_tid;
	if (timer_create(clk, &sev, &ids[i]))
		fail("timer_create %d", i);
	if (val_ms && timer_settime(ids[i], 0, &its, NULL))
		fail("timer_settime %d", i);
	alive[i] = 1;
}

static void *thread(void *arg)
{
	(void)arg;
	thr_tid = syscall(SYS_gettid);
	make(5, CLOCK_THREAD_CPUTIME_ID, SIGEV_THREAD_ID, SIGUSR2, 100000, 0);
	while (!go)
		syscall(SYS_futex, &go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return NULL;
}

static long long ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000LL + t->tv_nsec;
}

int main(int argc, char **argv)
{
	struct itimerspec before[NT + 1], after[NT + 1];
	struct sigaction sa = {};
	struct timespec t = { 0, 1000000 };
	sigset_t blk;
	pthread_t th;
	timer_t extra;
	int i, c1, c2, waited;

	test_init(argc, argv);

	/* first, so that a failed attempt takes id 0, not one between the others */
	{
		struct sigevent sev = { .sigev_notify = SIGEV_NONE };
		struct itimerspec its = { .it_value = { 60, 0 } };

		if (timer_create(CLOCK_REALTIME_ALARM, &sev, &ids[NT]) == 0) {
			timer_settime(ids[NT], 0, &its, NULL);
			alive[NT] = 1;
			nt = NT + 1;
		} else {
			test_msg("no CLOCK_REALTIME_ALARM timer here (%m): not tested");
		}
	}
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sa.sa_sigaction = rt1;
	sigaction(SIGRTMIN + 1, &sa, NULL);
	sa.sa_sigaction = rt2;
	sigaction(SIGRTMIN + 2, &sa, NULL);
	sigemptyset(&blk);
	sigaddset(&blk, SIGUSR1);
	sigaddset(&blk, SIGUSR2);
	sigprocmask(SIG_BLOCK, &blk, NULL);
	if (test_thread_create(&th, thread, NULL))
		fail("pthread_create");
	while (!alive[5])
		nanosleep(&t, NULL);

	make(0, CLOCK_REALTIME, SIGEV_SIGNAL, SIGUSR1, 100000, 0);
	make(1, CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 1, 200, 200);
	make(2, CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);		/* deleted below */
	make(3, CLOCK_BOOTTIME, SIGEV_NONE, 0, 50000, 7000);
	make(4, CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 2, 300, 300);
	/* 5 was made by the thread */
	make(6, CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIGUSR2, 100000, 0);
	make(7, CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 0, 0);	/* disarmed */
	if (timer_delete(ids[2]))
		fail("timer_delete");
	alive[2] = 0;
	for (i = 0; i < nt; i++)
		if (alive[i] && timer_gettime(ids[i], &before[i]))
			fail("timer_gettime %d", i);

	test_daemon();
	test_waitsig();

	for (i = 0; i < nt; i++) {
		if (!alive[i])
			continue;
		if (timer_gettime(ids[i], &after[i])) {
			pr_err("timer %d (id %ld) is gone: %m", i, (long)ids[i]);
			continue;
		}
		if (ns(&after[i].it_interval) != ns(&before[i].it_interval))
			pr_err("timer %d: interval %lld -> %lld ns", i, ns(&before[i].it_interval),
			       ns(&after[i].it_interval));
		if (!ns(&before[i].it_value) != !ns(&after[i].it_value))
			pr_err("timer %d: %s -> %s", i, ns(&before[i].it_value) ? "armed" : "disarmed",
			       ns(&after[i].it_value) ? "armed" : "disarmed");
		else if (!ns(&before[i].it_interval) && ns(&after[i].it_value) > ns(&before[i].it_value))
			pr_err("timer %d: remaining %lld ns grew to %lld ns", i, ns(&before[i].it_value),
			       ns(&after[i].it_value));
	}
	/* the next id is what it would have been */
	{
		struct sigevent sev = { .sigev_notify = SIGEV_NONE };

		if (timer_create(CLOCK_MONOTONIC, &sev, &extra))
			pr_err("timer_create after restore: %m");
		else if ((long)extra != (long)ids[7] + 1)
			pr_err("timer_create after restore gave id %ld, expected %ld", (long)extra,
			       (long)ids[7] + 1);
	}
	c1 = rt1_count;
	c2 = rt2_count;
	for (waited = 0; waited < 3000 && (rt1_count == c1 || rt2_count == c2); waited++)
		nanosleep(&t, NULL);
	if (rt1_count == c1)
		pr_err("the periodic MONOTONIC timer does not fire any more");
	if (rt2_count == c2)
		pr_err("the SIGEV_THREAD_ID timer does not fire any more");
	if (rt1_bad || rt2_bad)
		pr_err("%d deliveries with a wrong code/value, %d in the wrong thread or with a wrong value",
		       (int)rt1_bad, (int)rt2_bad);
	go = 1;
	syscall(SYS_futex, &go, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	if (test_thread_join(th))
		pr_err("thread did not finish");
	test_result();
	return 0;
}
