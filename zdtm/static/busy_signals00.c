/*
 * busy_signals00: a process under a storm of signals is dumped with the
 * signals pending at the freeze, none lost, none doubled, in order.
 *
 * A child (part of the dumped tree) queues SIGRTMIN to its parent with
 * sigqueue() and a serial number as value, and sends SIGUSR1 with kill(),
 * without pause (also across the dump: the parent is frozen first, so
 * IN_FLIGHT numbers are pending at the freeze; an EAGAIN makes the child
 * retry the same number).  At most IN_FLIGHT numbers are queued and not yet
 * handled: the queue limit (RLIMIT_SIGPENDING) counts the pending signals of
 * all of the user's processes together, and a storm that filled it to the
 * limit made every other test's queued signals fail to come back (EAGAIN),
 * its own restore too when two flavors of it ran at once.  The parent's SA_SIGINFO handler checks that each value is the
 * last one plus one.  After restore (SIGTERM) the child stops and writes
 * the last number it queued into a shared page; the parent takes what is
 * still pending and must have received exactly that number last.  The
 * .desc says signals are transient: the harness does not compare the
 * pending sets, queue counts and masks (a handler may be running), which
 * change all the time; the test checks its mask outside the handlers.
 */
#include "zdtmtst.h"

#include <errno.h>
#include <sched.h>
#include <sys/mman.h>

static volatile unsigned long last, out_of_order, usr1;
static volatile unsigned long *shared;	/* [0]: the child's last queued number, [1]: done,
					 * [2]: the parent's last handled number */
#define IN_FLIGHT 2048

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if ((unsigned long)si->si_value.sival_ptr != last + 1)
		out_of_order++;
	last = (unsigned long)si->si_value.sival_ptr;
	shared[2] = last;
}

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

static void sender(pid_t parent)
{
	unsigned long n = 0;
	union sigval v;

	while (test_go()) {
		v.sival_ptr = (void *)(n + 1);
		if (n - shared[2] >= IN_FLIGHT)
			sched_yield();
		else if (sigqueue(parent, SIGRTMIN, v) == 0)
			n++;
		else if (errno != EAGAIN)
			fail("sigqueue");
		else
			sched_yield();
		kill(parent, SIGUSR1);
	}
	shared[0] = n;
	shared[1] = 1;
	test_child_exit();
}

int main(int argc, char **argv)
{
	struct sigaction sa = {};
	struct timespec pause = { 0, 1000000 };
	unsigned long at_term;
	pid_t pid;
	int i;

	test_init(argc, argv);
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		fail("mmap");
	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	if (sigaction(SIGRTMIN, &sa, NULL))
		fail("sigaction");
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGUSR1, &sa, NULL))
		fail("sigaction");
	pid = test_fork();
	if (pid == 0) {
		test_child_ready();
		sender(getppid());
	}
	while (last < 1000)
		nanosleep(&pause, NULL);
	test_daemon();
	test_waitsig();

	at_term = last;
	{
		sigset_t cur;

		sigprocmask(SIG_BLOCK, NULL, &cur);
		if (sigismember(&cur, SIGRTMIN) || sigismember(&cur, SIGUSR1))
			pr_err("SIGRTMIN or SIGUSR1 blocked outside their handlers");
	}
	test_children_check();
	for (i = 0; i < 1000 && last != shared[0]; i++)
		nanosleep(&pause, NULL);	/* the last ones are delivered as they come */
	test_msg("%lu at SIGTERM, last received %lu, last sent %lu, %lu SIGUSR1", at_term,
		 (unsigned long)last, (unsigned long)shared[0], (unsigned long)usr1);
	if (!shared[1])
		pr_err("the sender did not finish");
	if (out_of_order)
		pr_err("%lu SIGRTMIN out of order (lost or doubled)", (unsigned long)out_of_order);
	if (last != shared[0])
		pr_err("last SIGRTMIN received %lu, sent %lu", (unsigned long)last, (unsigned long)shared[0]);
	test_result();
	return 0;
}
