/*
 * sched00: scheduling survives, per thread: policy (OTHER, BATCH, IDLE,
 * FIFO, RR, with SCHED_RESET_ON_FORK on one), RT priority, nice, CPU
 * affinity and io priority; and the process's oom_score_adj.
 *
 * Each thread sets its own and checks it again after restore, in the
 * thread (sched_getscheduler/sched_getparam/getpriority/sched_getaffinity/
 * ioprio_get on itself); the harness compares stat fields 18-19, 40-41 and
 * Cpus_allowed_list of every thread, and oom_score_adj.
 */
#include "zdtmtst.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IOPRIO_WHO_PROCESS	1
#define IOPRIO_PRIO(cls, data)	((cls) << 13 | (data))
#define OOM_ADJ			345

struct want {
	const char *name;
	int policy;		/* with SCHED_RESET_ON_FORK when asked */
	int prio;
	int nice;
	int cpu;		/* -1: all CPUs */
	int ioprio;		/* -1: leave it */
};

static const struct want wants[] = {
	{ "batch", SCHED_BATCH, 0, 7, 0, IOPRIO_PRIO(2, 6) },
	{ "idle", SCHED_IDLE, 0, 0, -1, IOPRIO_PRIO(3, 0) },
	{ "fifo", SCHED_FIFO, 10, -4, -1, -1 },
	{ "rr-reset", SCHED_RR | SCHED_RESET_ON_FORK, 5, 0, 1, IOPRIO_PRIO(1, 3) },
	{ "other", SCHED_OTHER, 0, 12, -1, -1 },
};
#define NTHR	(int)(sizeof(wants) / sizeof(wants[0]))

struct thr {
	pthread_t th;
	const struct want *w;
	pid_t tid;
	volatile int ready;
	struct test_notes notes;
};

static struct thr thr[NTHR];
static volatile int go;
static int ncpu;

static int set_own(const struct want *w)
{
	struct sched_param sp = { .sched_priority = w->prio };
	pid_t tid = syscall(SYS_gettid);

	if (sched_setscheduler(0, w->policy, &sp))
		return -1;
	if (setpriority(PRIO_PROCESS, tid, w->nice))
		return -1;
	if (w->cpu >= 0 && w->cpu < ncpu) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			return -1;
	}
	if (w->ioprio >= 0 && syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, w->ioprio))
		return -1;
	return 0;
}

static void check_own(const struct want *w, struct test_notes *n)
{
	struct sched_param sp;
	pid_t tid = syscall(SYS_gettid);
	int policy = sched_getscheduler(0), nice, io;
	cpu_set_t set;

	if (policy != w->policy)
		test_note(n, "policy %#x, expected %#x", policy, w->policy);
	if (sched_getparam(0, &sp) || sp.sched_priority != w->prio)
		test_note(n, "priority %d, expected %d", sp.sched_priority, w->prio);
	errno = 0;
	nice = getpriority(PRIO_PROCESS, tid);
	if (nice != w->nice)
		test_note(n, "nice %d, expected %d", nice, w->nice);
	if (sched_getaffinity(0, sizeof(set), &set))
		test_note(n, "sched_getaffinity: %m");
	else if (w->cpu >= 0 && w->cpu < ncpu && (CPU_COUNT(&set) != 1 || !CPU_ISSET(w->cpu, &set)))
		test_note(n, "affinity: %d CPUs, not just CPU %d", CPU_COUNT(&set), w->cpu);
	else if ((w->cpu < 0 || w->cpu >= ncpu) && CPU_COUNT(&set) != ncpu)
		test_note(n, "affinity: %d CPUs, expected all %d", CPU_COUNT(&set), ncpu);
	io = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
	if (w->ioprio >= 0 && io != w->ioprio)
		test_note(n, "io priority %#x, expected %#x", io, w->ioprio);
}

static void *thread(void *arg)
{
	struct thr *t = arg;

	t->tid = syscall(SYS_gettid);
	if (set_own(t->w))
		test_note(&t->notes, "setting %s: %m", t->w->name);
	t->ready = 1;
	while (!go)
		syscall(SYS_futex, &go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	check_own(t->w, &t->notes);
	return NULL;
}

static const struct want main_want = { "main", SCHED_OTHER, 0, -3, -1, IOPRIO_PRIO(2, 1) };

int main(int argc, char **argv)
{
	struct test_notes mn = {};
	char *buf;
	int i;

	test_init(argc, argv);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (set_own(&main_want))
		fail("setting the main thread's scheduling");
	test_write_text("/proc/self/oom_score_adj", "%d\n", OOM_ADJ);
	for (i = 0; i < NTHR; i++) {
		thr[i].w = &wants[i];
		if (test_thread_create(&thr[i].th, thread, &thr[i]))
			fail("pthread_create");
		while (!thr[i].ready)
			usleep(1000);
		if (thr[i].notes.errors)
			fail("thread %d: %s", i, thr[i].notes.msg);
	}

	test_daemon();
	test_waitsig();

	check_own(&main_want, &mn);
	if (mn.errors)
		pr_err("main: %s", mn.msg);
	if (test_read_file("/proc/self/oom_score_adj", &buf) < 0)
		pr_err("cannot read oom_score_adj");
	else if (atoi(buf) != OOM_ADJ)
		pr_err("oom_score_adj %d, expected %d", atoi(buf), OOM_ADJ);
	go = 1;
	syscall(SYS_futex, &go, FUTEX_WAKE_PRIVATE, NTHR, NULL, NULL, 0);
	for (i = 0; i < NTHR; i++) {
		if (test_thread_join(thr[i].th))
			pr_err("thread %s did not finish", wants[i].name);
		else if (thr[i].notes.errors)
			pr_err("thread %s (tid %d): %s", wants[i].name, thr[i].tid, thr[i].notes.msg);
	}
	test_result();
	return 0;
}
