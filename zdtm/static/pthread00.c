/*
 * pthread00: several threads, each with its own state, survive.
 *
 * NSPIN threads spin in an asm loop (pause) with known values in rbx, r11,
 * r12-r15 until a flag in memory is set; NWAIT threads sleep in
 * FUTEX_WAIT on a word, with a page of their own data on their stacks.
 * Every thread saved gettid() before the dump.  After SIGTERM (taken by the
 * main thread: the others block it) the main thread sets the flag and wakes
 * the futex; each thread checks its registers / stack data, gettid() and
 * pthread_self(), and reports.  The main thread also checks that
 * /proc/self/task lists exactly the saved tids and joins everyone.
 */
#include "zdtmtst.h"

#include <dirent.h>
#include <stdarg.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NSPIN	2
#define NWAIT	3
#define NTHR	(NSPIN + NWAIT)

struct thr {
	int idx;
	pthread_t self;
	pid_t tid;
	volatile int ready;
	struct test_notes notes;
};

static struct thr thr[NTHR];
static volatile int go;		/* the spin flag and the futex word */

static void check_ids(struct thr *t)
{
	pid_t tid = syscall(SYS_gettid);

	if (tid != t->tid)
		test_note(&t->notes, "gettid() %d, was %d", tid, t->tid);
	if (!pthread_equal(pthread_self(), t->self))
		test_note(&t->notes, "pthread_self() changed");
}

static void *spinner(void *arg)
{
	struct thr *t = arg;
	uint64_t base = 0x5a5a000000000000ULL + ((uint64_t)t->idx << 32);
	uint64_t r[6];

	t->tid = syscall(SYS_gettid);
	t->self = pthread_self();
	t->ready = 1;
	asm volatile(
		"mov %[b], %%rbx\n\t"
		"lea 1(%[b]), %%r11\n\t"	/* r11: clobbered by syscalls, not here */
		"lea 2(%[b]), %%r12\n\t"
		"lea 3(%[b]), %%r13\n\t"
		"lea 4(%[b]), %%r14\n\t"
		"lea 5(%[b]), %%r15\n\t"
		"1: pause\n\t"
		"cmpl $0, (%[go])\n\t"
		"je 1b\n\t"
		"mov %%rbx, 0(%[r])\n\t"
		"mov %%r11, 8(%[r])\n\t"
		"mov %%r12, 16(%[r])\n\t"
		"mov %%r13, 24(%[r])\n\t"
		"mov %%r14, 32(%[r])\n\t"
		"mov %%r15, 40(%[r])\n\t"
		:
		: [b] "r" (base), [go] "r" (&go), [r] "r" (r)
		: "rbx", "r11", "r12", "r13", "r14", "r15", "memory", "cc");
	for (int i = 0; i < 6; i++)
		if (r[i] != base + i)
			test_note(&t->notes, "register %d: %#llx, expected %#llx", i,
				(unsigned long long)r[i], (unsigned long long)(base + i));
	check_ids(t);
	return NULL;
}

static void *waiter(void *arg)
{
	struct thr *t = arg;
	char stackbuf[4096 + 333];
	long r;

	datagen(stackbuf, sizeof(stackbuf), 1000 + t->idx);
	t->tid = syscall(SYS_gettid);
	t->self = pthread_self();
	t->ready = 1;
	while (!go) {
		r = syscall(SYS_futex, &go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		if (r && errno != EAGAIN && errno != EINTR)
			test_note(&t->notes, "futex wait: errno %d", errno);
	}
	if (datachk(stackbuf, sizeof(stackbuf), 1000 + t->idx))
		test_note(&t->notes, "stack data differ at offset %zd",
			datachk_off(stackbuf, sizeof(stackbuf), 1000 + t->idx));
	check_ids(t);
	return NULL;
}

static int task_tids(pid_t *out, int max)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/task");
	int n = 0;

	if (!d)
		fail("opendir /proc/self/task");
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			if (n < max)
				out[n] = atoi(de->d_name);
			n++;
		}
	closedir(d);
	return n;
}

static int has(const pid_t *v, int n, pid_t x)
{
	for (int i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	pid_t tids[NTHR + 8], main_tid;
	int i, n;

	test_init(argc, argv);

	for (i = 0; i < NTHR; i++) {
		thr[i].idx = i;
		if (test_thread_create(&thr[i].self, i < NSPIN ? spinner : waiter, &thr[i]))
			fail("pthread_create");
	}
	for (i = 0; i < NTHR; i++)
		while (!thr[i].ready)
			usleep(1000);
	main_tid = syscall(SYS_gettid);

	test_daemon();
	test_waitsig();

	if (syscall(SYS_gettid) != main_tid || getpid() != main_tid)
		pr_err("main thread: tid %ld, pid %d, was %d", syscall(SYS_gettid),
		       getpid(), main_tid);
	n = task_tids(tids, ARRAY_SIZE(tids));
	if (n != NTHR + 1)
		pr_err("%d threads in /proc/self/task, expected %d", n, NTHR + 1);
	for (i = 0; i < NTHR; i++)
		if (!has(tids, n, thr[i].tid))
			pr_err("thread %d: tid %d is not in /proc/self/task", i, thr[i].tid);

	go = 1;
	syscall(SYS_futex, &go, FUTEX_WAKE_PRIVATE, NTHR, NULL, NULL, 0);
	for (i = 0; i < NTHR; i++) {
		if (test_thread_join(thr[i].self)) {
			pr_err("thread %d (tid %d) did not finish", i, thr[i].tid);
			continue;
		}
		if (thr[i].notes.errors)
			pr_err("thread %d (tid %d): %s", i, thr[i].tid, thr[i].notes.msg);
	}
	test_result();
	return 0;
}
