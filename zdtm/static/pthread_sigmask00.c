/*
 * pthread_sigmask00: per-thread blocked masks and per-thread pending
 * signals survive.
 *
 *   T0  blocks SIGUSR1; pthread_kill(T0, SIGUSR1) is pending in T0 only
 *   T1  blocks SIGUSR2 and SIGRTMIN+2; two rt_tgsigqueueinfo() of
 *       SIGRTMIN+2 with different values are queued in T1
 *   T2  blocks every signal it can
 *   main blocks SIGHUP
 * (all but main also block SIGTERM, so the harness's SIGTERM reaches main.)
 * After restore: SigBlk/SigPnd of every task in /proc/self/task/TID/status
 * are as before; each thread checks its own mask with pthread_sigmask() and
 * its pending set with sigpending(), then takes its signals with
 * sigtimedwait(): T0 gets SIGUSR1 from tgkill with our pid, T1 both queued
 * values in order, then nothing is left.
 */
#include "zdtmtst.h"

#include <linux/futex.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NTHR	3

struct thr {
	int idx;
	pthread_t th;
	pid_t tid;
	sigset_t mask;
	volatile int ready;
	struct test_notes notes;
	char blk[32], pnd[32];	/* from /proc before the dump */
};

static struct thr thr[NTHR];
static volatile int go;
static pid_t pid;

/* Compare two sets over the signals glibc lets us use. */
static int same_set(const sigset_t *a, const sigset_t *b, int *which)
{
	for (int s = 1; s <= 64; s++) {
		if (s == 32 || s == 33 || s == SIGKILL || s == SIGSTOP)
			continue;
		if (sigismember(a, s) != sigismember(b, s)) {
			*which = s;
			return 0;
		}
	}
	return 1;
}

static void status_field(pid_t tid, const char *field, char *out, size_t len)
{
	char path[64], *buf, *p;
	size_t fl = strlen(field);

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	out[0] = '\0';
	if (test_read_file(path, &buf) < 0)
		return;
	for (p = buf; p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (!strncmp(p, field, fl) && p[fl] == ':') {
			p += fl + 1;
			while (*p == '\t' || *p == ' ')
				p++;
			snprintf(out, len, "%.*s", (int)strcspn(p, "\n"), p);
			break;
		}
	}
	free(buf);
}

static void *thread(void *arg)
{
	struct thr *t = arg;
	sigset_t cur, pend, want;
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	int s, i;

	if (pthread_sigmask(SIG_SETMASK, &t->mask, NULL))
		return NULL;
	t->tid = syscall(SYS_gettid);
	t->ready = 1;
	while (!go)
		syscall(SYS_futex, &go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);

	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	if (!same_set(&cur, &t->mask, &s))
		test_note(&t->notes, "signal %d: blocked %d, expected %d", s, sigismember(&cur, s),
			sigismember(&t->mask, s));
	sigemptyset(&want);
	if (t->idx == 0)
		sigaddset(&want, SIGUSR1);
	if (t->idx == 1)
		sigaddset(&want, SIGRTMIN + 2);
	sigpending(&pend);
	if (!same_set(&pend, &want, &s))
		test_note(&t->notes, "signal %d: pending %d, expected %d", s, sigismember(&pend, s),
			sigismember(&want, s));

	if (t->idx == 0) {
		memset(&si, 0, sizeof(si));
		s = sigtimedwait(&want, &si, &zero);
		/* tgkill: SI_TKILL (older kernels) or SI_USER */
		if (s != SIGUSR1 || (si.si_code != SI_TKILL && si.si_code != SI_USER) ||
		    si.si_pid != pid)
			test_note(&t->notes, "sigtimedwait: sig %d code %d pid %d", s, si.si_code, si.si_pid);
	}
	if (t->idx == 1) {
		for (i = 0; i < 2; i++) {
			memset(&si, 0, sizeof(si));
			s = sigtimedwait(&want, &si, &zero);
			if (s != SIGRTMIN + 2 || si.si_code != SI_QUEUE ||
			    si.si_value.sival_int != 0x1000 + i || si.si_pid != pid)
				test_note(&t->notes, "RT #%d: sig %d code %d value %#x pid %d", i, s,
					si.si_code, si.si_value.sival_int, si.si_pid);
		}
	}
	sigfillset(&want);
	if (sigtimedwait(&want, &si, &zero) >= 0)
		test_note(&t->notes, "an extra signal %d was pending", si.si_signo);
	return NULL;
}

static void queue_rt(pid_t tid, int sig, int val)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = pid;
	si.si_uid = getuid();
	si.si_value.sival_int = val;
	if (syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &si))
		fail("rt_tgsigqueueinfo");
}

int main(int argc, char **argv)
{
	char blk[32], pnd[32], main_blk[32];
	sigset_t m, cur;
	int i, s;

	test_init(argc, argv);
	pid = getpid();

	for (i = 0; i < NTHR; i++) {
		struct thr *t = &thr[i];

		t->idx = i;
		sigemptyset(&t->mask);
		if (i == 0)
			sigaddset(&t->mask, SIGUSR1);
		if (i == 1) {
			sigaddset(&t->mask, SIGUSR2);
			sigaddset(&t->mask, SIGRTMIN + 2);
		}
		if (i == 2)
			sigfillset(&t->mask);
		sigaddset(&t->mask, SIGTERM);
		if (test_thread_create(&t->th, thread, t))
			fail("pthread_create");
	}
	sigemptyset(&m);
	sigaddset(&m, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	for (i = 0; i < NTHR; i++)
		while (!thr[i].ready)
			usleep(1000);

	if (pthread_kill(thr[0].th, SIGUSR1))
		fail("pthread_kill");
	queue_rt(thr[1].tid, SIGRTMIN + 2, 0x1000);
	queue_rt(thr[1].tid, SIGRTMIN + 2, 0x1001);
	for (i = 0; i < NTHR; i++) {
		status_field(thr[i].tid, "SigBlk", thr[i].blk, sizeof(thr[i].blk));
		status_field(thr[i].tid, "SigPnd", thr[i].pnd, sizeof(thr[i].pnd));
		if (!thr[i].blk[0] || !thr[i].pnd[0])
			fail("no SigBlk/SigPnd for thread %d", thr[i].tid);
	}
	status_field(pid, "SigBlk", main_blk, sizeof(main_blk));

	test_daemon();
	test_waitsig();

	for (i = 0; i < NTHR; i++) {
		status_field(thr[i].tid, "SigBlk", blk, sizeof(blk));
		status_field(thr[i].tid, "SigPnd", pnd, sizeof(pnd));
		if (strcmp(blk, thr[i].blk))
			pr_err("thread %d: SigBlk %s, was %s", i, blk, thr[i].blk);
		if (strcmp(pnd, thr[i].pnd))
			pr_err("thread %d: SigPnd %s, was %s", i, pnd, thr[i].pnd);
	}
	status_field(pid, "SigBlk", blk, sizeof(blk));
	if (strcmp(blk, main_blk))
		pr_err("main thread: SigBlk %s, was %s", blk, main_blk);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	sigdelset(&cur, SIGTERM);	/* test_waitsig's own */
	if (!same_set(&cur, &m, &s))
		pr_err("main thread: signal %d blocked %d", s, sigismember(&cur, s));

	go = 1;
	syscall(SYS_futex, &go, FUTEX_WAKE_PRIVATE, NTHR, NULL, NULL, 0);
	for (i = 0; i < NTHR; i++) {
		if (test_thread_join(thr[i].th)) {
			pr_err("thread %d (tid %d) did not finish", i, thr[i].tid);
			continue;
		}
		if (thr[i].notes.errors)
			pr_err("thread %d (tid %d): %s", i, thr[i].tid, thr[i].notes.msg);
	}
	test_result();
	return 0;
}
