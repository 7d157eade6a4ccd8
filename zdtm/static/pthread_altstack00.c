/*
 * pthread_altstack00: per-thread alternate signal stacks survive.
 *
 *   main  16 KiB altstack
 *   T0    64 KiB altstack
 *   T1    40 KiB altstack with SS_AUTODISARM
 *   T2    none (SS_DISABLE)
 * SIGUSR1 has an SA_ONSTACK handler that records where its frame is.  Each
 * thread takes SIGUSR1 once before the dump.  After restore each thread
 * checks sigaltstack() (sp, size, flags) against what it saw before, takes
 * SIGUSR1 again and checks the handler ran on its own altstack (T2: on its
 * ordinary stack), and that the altstack is still armed afterwards.
 */
#include "zdtmtst.h"

#include <linux/futex.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NTHR	3

#ifndef SS_AUTODISARM
#define SS_AUTODISARM	(1U << 31)
#endif

static __thread volatile uintptr_t h_sp;
static __thread volatile int h_count;

static void on_usr1(int sig)
{
	volatile int here;

	(void)sig;
	h_sp = (uintptr_t)&here;
	h_count++;
}

struct thr {
	int idx;
	pthread_t th;
	size_t size;	/* 0: no altstack */
	int flags;
	stack_t saved;
	volatile int ready;
	struct test_notes notes;
};

static struct thr thr[NTHR + 1];	/* the last one is the main thread */
static volatile int go;

static void setup(struct thr *t)
{
	stack_t ss = { .ss_flags = SS_DISABLE };

	if (t->size) {
		ss.ss_sp = malloc(t->size);
		if (!ss.ss_sp)
			fail("malloc");
		ss.ss_size = t->size;
		ss.ss_flags = t->flags;
	}
	if (sigaltstack(&ss, NULL))
		fail("sigaltstack");
	if (sigaltstack(NULL, &t->saved))
		fail("sigaltstack query");
}

/* Take SIGUSR1 and check where the handler ran. */
static void take(struct thr *t, const char *when)
{
	uintptr_t lo = (uintptr_t)t->saved.ss_sp, hi = lo + t->saved.ss_size;
	int before = h_count;
	volatile int mine;
	uintptr_t sp;

	h_sp = 0;
	pthread_kill(pthread_self(), SIGUSR1);
	if (h_count != before + 1) {
		test_note(&t->notes, "%s: the handler ran %d times", when, h_count - before);
		return;
	}
	sp = h_sp;
	if (t->size && (sp < lo || sp >= hi))
		test_note(&t->notes, "%s: handler frame %#lx not on the altstack %#lx-%#lx", when,
			(unsigned long)sp, (unsigned long)lo, (unsigned long)hi);
	/* no altstack: the frame is just below this function's. */
	if (!t->size && (sp > (uintptr_t)&mine || (uintptr_t)&mine - sp > 65536))
		test_note(&t->notes, "%s: handler frame %#lx not on the thread stack (%p)", when,
			(unsigned long)sp, (void *)&mine);
}

static void check_after(struct thr *t)
{
	stack_t ss;

	if (sigaltstack(NULL, &ss)) {
		test_note(&t->notes, "sigaltstack query failed");
		return;
	}
	if (ss.ss_sp != t->saved.ss_sp || ss.ss_size != t->saved.ss_size ||
	    ss.ss_flags != t->saved.ss_flags)
		test_note(&t->notes, "sigaltstack %p/%zu/%#x, was %p/%zu/%#x", ss.ss_sp, ss.ss_size,
			ss.ss_flags, t->saved.ss_sp, t->saved.ss_size, t->saved.ss_flags);
	take(t, "after restore");
	if (sigaltstack(NULL, &ss) || ss.ss_sp != t->saved.ss_sp ||
	    ss.ss_flags != t->saved.ss_flags)
		test_note(&t->notes, "altstack not armed again after the handler");
}

static void *thread(void *arg)
{
	struct thr *t = arg;

	setup(t);
	take(t, "before the dump");
	t->ready = 1;
	while (!go)
		syscall(SYS_futex, &go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	check_after(t);
	return NULL;
}

int main(int argc, char **argv)
{
	static const size_t sizes[NTHR + 1] = { 64 << 10, 40 << 10, 0, 16 << 10 };
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_ONSTACK };
	struct thr *m = &thr[NTHR];
	int i;

	test_init(argc, argv);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		fail("sigaction");

	for (i = 0; i <= NTHR; i++) {
		thr[i].idx = i;
		thr[i].size = sizes[i];
		thr[i].flags = i == 1 ? SS_AUTODISARM : 0;
	}
	for (i = 0; i < NTHR; i++)
		if (test_thread_create(&thr[i].th, thread, &thr[i]))
			fail("pthread_create");
	setup(m);
	take(m, "before the dump");
	for (i = 0; i < NTHR; i++)
		while (!thr[i].ready)
			usleep(1000);
	for (i = 0; i <= NTHR; i++)
		if (thr[i].notes.errors)
			fail("thread %d: %s", i, thr[i].notes.msg);

	test_daemon();
	test_waitsig();

	check_after(m);
	go = 1;
	syscall(SYS_futex, &go, FUTEX_WAKE_PRIVATE, NTHR, NULL, NULL, 0);
	for (i = 0; i <= NTHR; i++) {
		if (i < NTHR && test_thread_join(thr[i].th)) {
			pr_err("thread %d did not finish", i);
			continue;
		}
		if (thr[i].notes.errors)
			pr_err("%s %d: %s", i < NTHR ? "thread" : "main", i, thr[i].notes.msg);
	}
	test_result();
	return 0;
}
