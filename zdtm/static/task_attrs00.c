/*
 * task_attrs00: per-task prctl attributes survive.
 *
 * The root is a child subreaper with THP disabled, MCE kill policy EARLY,
 * timer slack 123456 ns, dumpable 0 and memory-deny-write-execute; a thread
 * has its own timer slack and TSC access SIGSEGV; a child has a
 * parent-death signal.  An orphan (its parent exited before the dump) was
 * re-parented to the root.  After restore every attribute reads back the
 * same (in the task that owns it), the orphan is still the root's child
 * (waitpid), and a new orphan made after the restore is re-parented to the
 * root too.
 */
#include "zdtmtst.h"

#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE		65
#define PR_GET_MDWE		66
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

#define SLACK_MAIN	123456
#define SLACK_THR	777000

static volatile int go;
static struct test_notes tn;

static void *thread(void *arg)
{
	int tsc = 0;

	(void)arg;
	if (prctl(PR_SET_TIMERSLACK, SLACK_THR, 0, 0, 0) || prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0))
		test_note(&tn, "setting: %m");
	go = 1;
	syscall(SYS_futex, &go, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	while (go != 2)
		syscall(SYS_futex, &go, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
	if (prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != SLACK_THR)
		test_note(&tn, "thread timer slack %d", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
	if (prctl(PR_GET_TSC, &tsc, 0, 0, 0) || tsc != PR_TSC_SIGSEGV)
		test_note(&tn, "thread TSC mode %d", tsc);
	return NULL;
}

/* A child with a parent-death signal: exits 0 if it still has it. */
static pid_t pdeath_child(void)
{
	pid_t pid = test_fork();

	if (pid == 0) {
		int sig = 0;

		if (prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0))
			pr_err("PR_SET_PDEATHSIG");
		test_child_ready();
		test_waitsig();
		if (prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) || sig != SIGUSR2)
			pr_err("child: parent-death signal %d, expected %d", sig, SIGUSR2);
		test_child_exit();
	}
	return pid;
}

/* An orphan: its parent exits at once; it waits for SIGTERM and exits 0 if
 * its parent is then `root`.  Returns the orphan's pid. */
static pid_t orphan(pid_t root)
{
	int p[2];
	pid_t mid, o = -1;

	if (pipe(p))
		fail("pipe");
	mid = fork();
	if (mid < 0)
		fail("fork");
	if (mid == 0) {
		pid_t kid = fork();

		if (kid == 0) {
			close(p[0]);
			while (getppid() != root)
				usleep(1000);
			if (write(p[1], "r", 1) != 1)
				_exit(3);
			close(p[1]);
			test_waitsig();
			_exit(getppid() == root ? 0 : 2);
		}
		if (write(p[1], &kid, sizeof(kid)) != sizeof(kid))
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &o, sizeof(o)) != sizeof(o))
		fail("orphan pid");
	if (waitpid(mid, NULL, 0) != mid)
		fail("waitpid mid");
	{
		char c;

		if (read(p[0], &c, 1) != 1)
			fail("orphan not re-parented");
	}
	close(p[0]);
	return o;
}

static void check_orphan(pid_t o, const char *what)
{
	int st;

	kill(o, SIGTERM);
	if (waitpid(o, &st, 0) != o)
		pr_err("%s orphan %d is not our child: %m", what, o);
	else if (!WIFEXITED(st) || WEXITSTATUS(st))
		pr_err("%s orphan %d: status %#x", what, o, st);
}

int main(int argc, char **argv)
{
	pthread_t th;
	pid_t root, o1;
	int v = 0, st;

	test_init(argc, argv);
	root = getpid();

	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		fail("PR_SET_CHILD_SUBREAPER");
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		fail("PR_SET_THP_DISABLE");
	if (prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0))
		fail("PR_MCE_KILL");
	if (prctl(PR_SET_TIMERSLACK, SLACK_MAIN, 0, 0, 0))
		fail("PR_SET_TIMERSLACK");
	pdeath_child();
	o1 = orphan(root);
	if (test_thread_create(&th, thread, NULL))
		fail("pthread_create");
	while (!go)
		syscall(SYS_futex, &go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	if (tn.errors)
		fail("thread: %s", tn.msg);
	test_children_wait_ready();
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		fail("PR_SET_DUMPABLE");
	if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0))
		fail("PR_SET_MDWE");

	test_daemon();
	test_waitsig();

	if (prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0) || v != 1)
		pr_err("child subreaper %d", v);
	if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) != 1)
		pr_err("THP disable %d", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
	if (prctl(PR_MCE_KILL_GET, 0, 0, 0, 0) != PR_MCE_KILL_EARLY)
		pr_err("MCE kill policy %d", prctl(PR_MCE_KILL_GET, 0, 0, 0, 0));
	if (prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != SLACK_MAIN)
		pr_err("timer slack %d", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		pr_err("dumpable %d", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
	if (prctl(PR_GET_MDWE, 0, 0, 0, 0) != PR_MDWE_REFUSE_EXEC_GAIN)
		pr_err("MDWE %d", prctl(PR_GET_MDWE, 0, 0, 0, 0));
	go = 2;
	syscall(SYS_futex, &go, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	if (test_thread_join(th))
		pr_err("thread did not finish");
	else if (tn.errors)
		pr_err("thread: %s", tn.msg);
	check_orphan(o1, "dumped");
	check_orphan(orphan(root), "new");
	test_children_kick(SIGTERM);
	if (test_children_wait())
		pr_err("the parent-death child failed");
	(void)st;
	test_result();
	return 0;
}
