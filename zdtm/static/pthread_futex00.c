/*
 * pthread_futex00: threads blocked in futex-based waits at dump time are
 * woken after restore and carry on correctly.
 *
 *   T0  pthread_mutex_lock() on a mutex the main thread holds
 *   T1  pthread_cond_wait() for a predicate
 *   T2  raw FUTEX_WAIT on a word
 *   T3  pthread_mutex_lock() on a priority-inheritance mutex the main thread
 *       holds (FUTEX_LOCK_PI: the futex word names the owner's tid)
 *   T4  sem_wait() on a POSIX semaphore
 * Before the dump the main thread waits until every thread sits in the
 * futex syscall (/proc/self/task/TID/syscall).  After restore it changes a
 * value guarded by each primitive, releases them one by one and checks that
 * each thread got through, saw the new value, and held the mutex exclusively
 * (the main thread can't take it while the thread holds it).
 */
#include "zdtmtst.h"

#include <linux/futex.h>
#include <semaphore.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NTHR	5

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cmtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t pimtx;
static sem_t sem;
static volatile int word;
static int value[NTHR];		/* guarded by the primitive of thread i */
static volatile int seen[NTHR] = { -1, -1, -1, -1, -1 };
static volatile pid_t tids[NTHR];
static volatile int done[NTHR];
static pthread_t th[NTHR];
static int cond_pred;
static volatile int hold_release;	/* T0/T3 keep their mutex until set */

static void *t_mutex(void *arg)
{
	(void)arg;
	tids[0] = syscall(SYS_gettid);
	if (pthread_mutex_lock(&mtx))
		return NULL;
	seen[0] = value[0];
	done[0] = 1;
	while (!hold_release)
		usleep(1000);
	pthread_mutex_unlock(&mtx);
	return NULL;
}

static void *t_cond(void *arg)
{
	(void)arg;
	tids[1] = syscall(SYS_gettid);
	pthread_mutex_lock(&cmtx);
	while (!cond_pred)
		pthread_cond_wait(&cond, &cmtx);
	seen[1] = value[1];
	done[1] = 1;
	pthread_mutex_unlock(&cmtx);
	return NULL;
}

static void *t_futex(void *arg)
{
	(void)arg;
	tids[2] = syscall(SYS_gettid);
	while (word == 0)
		syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	seen[2] = value[2];
	done[2] = 1;
	return NULL;
}

static void *t_pi(void *arg)
{
	(void)arg;
	tids[3] = syscall(SYS_gettid);
	if (pthread_mutex_lock(&pimtx))
		return NULL;
	seen[3] = value[3];
	done[3] = 1;
	while (!hold_release)
		usleep(1000);
	pthread_mutex_unlock(&pimtx);
	return NULL;
}

static void *t_sem(void *arg)
{
	(void)arg;
	tids[4] = syscall(SYS_gettid);
	while (sem_wait(&sem) && errno == EINTR)
		;
	seen[4] = value[4];
	done[4] = 1;
	return NULL;
}

/* Nonzero once thread tid is asleep in the futex syscall. */
static int in_futex(pid_t tid)
{
	char path[64], *buf;
	long nr = -1;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	if (test_read_file(path, &buf) < 0)
		return 0;
	nr = strtol(buf, NULL, 10);
	free(buf);
	return nr == SYS_futex;
}

static int wait_done(int i)
{
	for (int n = 0; n < 10000 && !done[i]; n++)
		usleep(1000);
	return done[i];
}

int main(int argc, char **argv)
{
	void *(*fns[NTHR])(void *) = { t_mutex, t_cond, t_futex, t_pi, t_sem };
	pthread_mutexattr_t ma;
	int i, n;

	test_init(argc, argv);

	pthread_mutexattr_init(&ma);
	if (pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT))
		fail("PTHREAD_PRIO_INHERIT");
	pthread_mutex_init(&pimtx, &ma);
	if (sem_init(&sem, 0, 0))
		fail("sem_init");
	if (pthread_mutex_lock(&mtx) || pthread_mutex_lock(&pimtx))
		fail("lock");
	for (i = 0; i < NTHR; i++)
		if (test_thread_create(&th[i], fns[i], NULL))
			fail("pthread_create");
	for (i = 0; i < NTHR; i++) {
		for (n = 0; n < 10000 && !(tids[i] && in_futex(tids[i])); n++)
			usleep(1000);
		if (n == 10000)
			fail("thread %d never blocked in futex()", i);
	}
	usleep(10000);	/* let T1 get from the cond's internals to its wait */
	for (i = 0; i < NTHR; i++)
		if (done[i] || !in_futex(tids[i]))
			fail("thread %d is not blocked", i);

	test_daemon();
	test_waitsig();

	for (i = 0; i < NTHR; i++)
		if (done[i])
			pr_err("thread %d got through before it was released", i);

	value[0] = 100;
	pthread_mutex_unlock(&mtx);
	if (!wait_done(0))
		pr_err("mutex waiter not woken");
	else if (pthread_mutex_trylock(&mtx) != EBUSY)
		pr_err("the mutex is not held by the thread that got it");

	pthread_mutex_lock(&cmtx);
	value[1] = 101;
	cond_pred = 1;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&cmtx);
	if (!wait_done(1))
		pr_err("cond waiter not woken");

	value[2] = 102;
	word = 1;
	syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	if (!wait_done(2))
		pr_err("futex waiter not woken");

	value[3] = 103;
	if (pthread_mutex_unlock(&pimtx))
		pr_err("unlocking the PI mutex: %d", errno);
	if (!wait_done(3))
		pr_err("PI mutex waiter not woken");
	else if (pthread_mutex_trylock(&pimtx) != EBUSY)
		pr_err("the PI mutex is not held by the thread that got it");

	value[4] = 104;
	sem_post(&sem);
	if (!wait_done(4))
		pr_err("semaphore waiter not woken");

	hold_release = 1;
	for (i = 0; i < NTHR; i++) {
		if (test_thread_join(th[i]))
			pr_err("thread %d did not finish", i);
		else if (done[i] && seen[i] != 100 + i)
			pr_err("thread %d saw %d, expected %d", i, seen[i], 100 + i);
	}
	if (pthread_mutex_trylock(&mtx) || pthread_mutex_trylock(&pimtx))
		pr_err("mutexes not free at the end");
	test_result();
	return 0;
}
