/*
 * stopped00: stopped tasks come back stopped, with the same stop signal.
 *
 * Four children, each in a process group of its own (a stop by SIGTSTP or
 * SIGTTIN is discarded in an orphaned group): stopped by SIGSTOP (the parent
 * has already waited for that stop), by SIGTSTP, by SIGTTIN (neither waited
 * for), and a child with three threads stopped by SIGSTOP.  After restore
 * each is still stopped ('T' in /proc/PID/stat, every thread of the threaded
 * one); the parent can wait for the stops it had not waited for yet
 * (WUNTRACED: WSTOPSIG is the same signal), SIGCONT resumes each child and
 * the parent sees it continue (WCONTINUED); then each child checks that it
 * still works (its threads too) and exits cleanly.
 */
#include "zdtmtst.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define NKIDS 4
#define NTHR 2

static const int stopsig[NKIDS] = { SIGSTOP, SIGTSTP, SIGTTIN, SIGSTOP };
static pid_t kids[NKIDS];
static volatile int spins[NTHR];

static void *spinner(void *arg)
{
	int i = (int)(long)arg;

	for (;;) {
		spins[i]++;
		usleep(1000);
	}
	return NULL;
}

static char state_of(pid_t pid, pid_t tid)
{
	char path[64], *buf, *p, st = '?';

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	if (test_read_file(path, &buf) < 0)
		return '?';
	p = strrchr(buf, ')');
	if (p && p[1] == ' ')
		st = p[2];
	free(buf);
	return st;
}

/* Every thread of pid in state 'T' (waits up to 5 s for it). */
static int all_stopped(pid_t pid)
{
	int tries;

	for (tries = 0; tries < 500; tries++) {
		DIR *d;
		struct dirent *e;
		char path[64];
		int ok = 1;

		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		d = opendir(path);
		if (!d)
			return 0;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.' && state_of(pid, atoi(e->d_name)) != 'T')
				ok = 0;
		closedir(d);
		if (ok)
			return 1;
		usleep(10000);
	}
	return 0;
}

static void child(int i)
{
	pthread_t t[NTHR];
	int k, before[NTHR];

	if (setpgid(0, 0))
		fail("setpgid");
	if (i == 3)
		for (k = 0; k < NTHR; k++)
			if (test_thread_create(&t[k], spinner, (void *)(long)k))
				fail("pthread_create");
	while (i == 3 && (!spins[0] || !spins[1]))
		usleep(1000);		/* the threads run (their start-up is done) */
	test_child_ready();
	raise(stopsig[i]);		/* stays here until SIGCONT, after restore */
	if (i == 3) {
		int tries;

		for (k = 0; k < NTHR; k++)
			before[k] = spins[k];
		for (k = 0; k < NTHR; k++) {
			for (tries = 0; tries < 1000 && spins[k] == before[k]; tries++)
				usleep(10000);	/* up to 10 s: the machine may be busy */
			if (spins[k] == before[k])
				pr_err("child %d: thread %d does not run after SIGCONT", i, k);
		}
	}
	test_waitsig();
	test_child_exit();
}

int main(int argc, char **argv)
{
	int i, status;

	test_init(argc, argv);
	for (i = 0; i < NKIDS; i++) {
		kids[i] = test_fork();
		if (kids[i] == 0)
			child(i);
	}
	test_children_wait_ready();
	for (i = 0; i < NKIDS; i++)
		if (!all_stopped(kids[i]))
			fail("child %d did not stop", i);
	if (waitpid(kids[0], &status, WUNTRACED) != kids[0] || !WIFSTOPPED(status))
		fail("waitpid(WUNTRACED) of child 0");
	test_daemon();
	test_waitsig();

	for (i = 0; i < NKIDS; i++) {
		if (!all_stopped(kids[i]))
			pr_err("child %d (stopped by signal %d) is not stopped after restore", i, stopsig[i]);
		if (i == 1 || i == 2) {
			pid_t r = waitpid(kids[i], &status, WUNTRACED);

			if (r != kids[i] || !WIFSTOPPED(status) || WSTOPSIG(status) != stopsig[i])
				pr_err("child %d: waitpid(WUNTRACED) = %d status %#x, expected a stop by %d",
				       i, r, status, stopsig[i]);
		}
	}
	for (i = 0; i < NKIDS; i++) {
		pid_t r;

		kill(kids[i], SIGCONT);
		do
			r = waitpid(kids[i], &status, WCONTINUED | WUNTRACED);
		while (r == kids[i] && WIFSTOPPED(status));	/* child 0's stop may be told again */
		if (r != kids[i] || !WIFCONTINUED(status))
			pr_err("child %d: waitpid(WCONTINUED) = %d status %#x", i, r, status);
	}
	test_children_check();
	test_result();
	return 0;
}
