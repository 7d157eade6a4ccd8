/*
 * busy_threads00: a process creating and ending threads without pause is
 * dumped with the threads it had at the freeze, each one whole.
 *
 * A creator thread keeps NSLOT workers alive: it joins the oldest and
 * creates a new one, over and over (also across the dump).  A worker puts
 * a pattern derived from its serial number on its stack, yields a few
 * times, checks the pattern and its tid, and adds itself to the finished
 * count.  After restore (SIGTERM) the creator stops; every worker it created
 * must have finished with its checks passed, and creating went on after the
 * restore, and the creator's mask is the one it had.  The .desc says threads
 * are transient: the harness compares only the threads present both before
 * the dump and after the restore, and not their masks (pthread_create
 * blocks every signal for a moment).
 */
#include "zdtmtst.h"

#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NSLOT	4
#define PAT	512

static atomic_int stop;
static atomic_ulong created, finished, bad;

static void *worker(void *arg)
{
	unsigned long serial = (unsigned long)arg, i;
	volatile unsigned long pat[PAT];
	pid_t tid = syscall(SYS_gettid);
	int y;

	for (i = 0; i < PAT; i++)
		pat[i] = serial * 2654435761UL + i;
	for (y = 0; y < 20; y++)
		sched_yield();
	for (i = 0; i < PAT; i++)
		if (pat[i] != serial * 2654435761UL + i) {
			atomic_fetch_add(&bad, 1);
			break;
		}
	if (syscall(SYS_gettid) != tid)
		atomic_fetch_add(&bad, 1);
	atomic_fetch_add(&finished, 1);
	return (void *)serial;
}

static void *creator(void *arg)
{
	pthread_t slot[NSLOT];
	unsigned long serial = 0;
	sigset_t mask, now;
	int i, n = 0;
	void *ret;

	(void)arg;
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	for (;;) {
		i = serial % NSLOT;
		if (n == NSLOT) {
			if (pthread_join(slot[i], &ret) || (unsigned long)ret != serial - NSLOT)
				atomic_fetch_add(&bad, 1);
			n--;
		}
		if (atomic_load(&stop))
			break;
		if (test_thread_create(&slot[i], worker, (void *)serial)) {
			atomic_fetch_add(&bad, 1);
			break;
		}
		atomic_fetch_add(&created, 1);
		serial++;
		n++;
	}
	for (; n > 0; n--) {		/* the rest, oldest first */
		i = (serial - n) % NSLOT;
		if (pthread_join(slot[i], NULL))
			atomic_fetch_add(&bad, 1);
	}
	pthread_sigmask(SIG_BLOCK, NULL, &now);	/* outside pthread_create: the mask it had */
	for (i = 1; i < NSIG; i++)
		if (sigismember(&mask, i) != sigismember(&now, i))
			atomic_fetch_add(&bad, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t c;
	unsigned long at_term;

	test_init(argc, argv);
	if (test_thread_create(&c, creator, NULL))
		fail("pthread_create");
	while (atomic_load(&finished) < 100)
		usleep(1000);

	test_daemon();
	test_waitsig();

	at_term = atomic_load(&created);
	usleep(200000);
	atomic_store(&stop, 1);
	if (test_thread_join(c))
		fail("the creator did not stop");
	test_msg("%lu threads at SIGTERM, %lu created, %lu finished", at_term,
		 (unsigned long)atomic_load(&created), (unsigned long)atomic_load(&finished));
	if (atomic_load(&bad))
		pr_err("%lu worker(s) found their stack, tid or join value (or the creator its mask) wrong",
		       (unsigned long)atomic_load(&bad));
	if (atomic_load(&created) != atomic_load(&finished))
		pr_err("%lu threads created, %lu finished", (unsigned long)atomic_load(&created),
		       (unsigned long)atomic_load(&finished));
	if (atomic_load(&created) == at_term)
		pr_err("no thread was created after restore");
	test_result();
	return 0;
}
