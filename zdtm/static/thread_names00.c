/*
 * thread_names00: the name (comm) of every thread survives.
 *
 * The main thread renames itself with PR_SET_NAME, each thread gets its own
 * name with pthread_setname_np() (one of them the full 15 characters, one
 * with a space).  After restore /proc/self/task/TID/comm of every thread,
 * pthread_getname_np() and each thread's own PR_GET_NAME are as set.
 */
#include "zdtmtst.h"

#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NTHR	4

static const char *names[NTHR + 1] = {
	"zdtm-worker-0", "w1", "fifteen-chars-x", "a name", "zdtm-main",
};

struct thr {
	pthread_t th;
	pid_t tid;
	volatile int ready;
	char got[32];	/* PR_GET_NAME after restore, in the thread */
};

static struct thr thr[NTHR];
static volatile int go;

static void *thread(void *arg)
{
	struct thr *t = arg;

	t->tid = syscall(SYS_gettid);
	t->ready = 1;
	while (!go)
		syscall(SYS_futex, &go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	prctl(PR_GET_NAME, t->got, 0, 0, 0);
	return NULL;
}

static void check_comm(pid_t tid, const char *want)
{
	char path[64], *buf;
	size_t l;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
	if (test_read_file(path, &buf) < 0) {
		pr_err("can't read %s", path);
		return;
	}
	l = strcspn(buf, "\n");
	buf[l] = '\0';
	if (strcmp(buf, want))
		pr_err("task %d: comm '%s', expected '%s'", tid, buf, want);
	free(buf);
}

int main(int argc, char **argv)
{
	char name[32];
	int i;

	test_init(argc, argv);

	for (i = 0; i < NTHR; i++)
		if (test_thread_create(&thr[i].th, thread, &thr[i]))
			fail("pthread_create");
	for (i = 0; i < NTHR; i++) {
		while (!thr[i].ready)
			usleep(1000);
		if (pthread_setname_np(thr[i].th, names[i]))
			fail("pthread_setname_np");
	}
	if (prctl(PR_SET_NAME, names[NTHR], 0, 0, 0))
		fail("PR_SET_NAME");
	for (i = 0; i < NTHR; i++)
		check_comm(thr[i].tid, names[i]);
	check_comm(getpid(), names[NTHR]);
	if (test_errors)
		fail("names not set as planned");

	test_daemon();
	test_waitsig();

	for (i = 0; i < NTHR; i++) {
		check_comm(thr[i].tid, names[i]);
		if (pthread_getname_np(thr[i].th, name, sizeof(name)) || strcmp(name, names[i]))
			pr_err("thread %d: pthread_getname_np '%s'", i, name);
	}
	check_comm(getpid(), names[NTHR]);
	memset(name, 0, sizeof(name));
	prctl(PR_GET_NAME, name, 0, 0, 0);
	if (strcmp(name, names[NTHR]))
		pr_err("main: PR_GET_NAME '%s'", name);

	go = 1;
	syscall(SYS_futex, &go, FUTEX_WAKE_PRIVATE, NTHR, NULL, NULL, 0);
	for (i = 0; i < NTHR; i++) {
		if (test_thread_join(thr[i].th))
			pr_err("thread %d did not finish", i);
		else if (strcmp(thr[i].got, names[i]))
			pr_err("thread %d: PR_GET_NAME in the thread '%s', expected '%s'", i,
			       thr[i].got, names[i]);
	}
	test_result();
	return 0;
}
