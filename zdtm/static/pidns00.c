/*
 * pidns00 (ns flavor only): the test is the init of its pid namespace, and
 * the pids inside the namespace survive.
 *
 *   1        the test
 *   ├─ A      child, forks A1
 *   │  └─ A1
 *   ├─ B
 *   └─ O      orphan: its parent (a helper child) exited, so it was
 *             reparented to the test, pid 1
 *
 * After restore: getpid() == 1 in the test; every process has the same
 * (inner) pid and ppid as before; the orphan's parent is 1 and the test can
 * wait for it; kill(1, 0) works from a child; /proc/self/stat, if /proc is
 * the namespace's, agrees with getpid().
 */
#include "zdtmtst.h"

#include <unistd.h>
#include <sys/wait.h>

static pid_t my_pid, my_ppid;

static void check_self(const char *who)
{
	if (getpid() != my_pid)
		pr_err("%s: pid %d, was %d", who, getpid(), my_pid);
	if (getppid() != my_ppid)
		pr_err("%s: ppid %d, was %d", who, getppid(), my_ppid);
	if (kill(1, 0))
		pr_err("%s: can't signal pid 1", who);
}

static void child(const char *who, int grand);

static void spawn_a1(void)
{
	if (test_fork() == 0)
		child("A1", 0);
}

static void child(const char *who, int grand)
{
	if (grand)
		spawn_a1();
	my_pid = getpid();
	my_ppid = getppid();
	test_child_ready();
	test_waitsig();
	check_self(who);
	test_children_check();
	test_child_exit();
}

int main(int argc, char **argv)
{
	int p[2], status;
	pid_t a, b, helper, orphan = 0;
	char *stat;

	test_init(argc, argv);
	if (getpid() != 1)
		fail("not pid 1 of a pid namespace: this scenario is for the ns flavor");

	a = test_fork();
	if (a == 0)
		child("A", 1);
	b = test_fork();
	if (b == 0)
		child("B", 0);

	/* The orphan: a helper forks it and exits; it is reparented to us. */
	if (pipe(p))
		fail("pipe");
	helper = fork();
	if (helper < 0)
		fail("fork");
	if (helper == 0) {
		pid_t o = fork();

		if (o < 0)
			_exit(1);
		if (o == 0) {
			close(p[0]);
			while (getppid() != 1)
				usleep(1000);
			my_pid = getpid();
			my_ppid = 1;
			if (write(p[1], &my_pid, sizeof(my_pid)) != sizeof(my_pid))
				_exit(1);
			close(p[1]);
			test_waitsig();
			check_self("orphan");
			test_child_exit();
		}
		_exit(0);
	}
	close(p[1]);
	if (waitpid(helper, &status, 0) != helper || status)
		fail("helper");
	if (read(p[0], &orphan, sizeof(orphan)) != sizeof(orphan))
		fail("no word from the orphan");
	close(p[0]);
	my_pid = getpid();

	test_daemon();
	test_waitsig();

	if (getpid() != 1)
		pr_err("getpid() = %d, not 1", getpid());
	/* Only meaningful when /proc is this namespace's: its pid 1 is us. */
	if (test_read_file("/proc/1/stat", &stat) > 0) {
		int ours = strstr(stat, test_name) != NULL;

		free(stat);
		if (ours && test_read_file("/proc/self/stat", &stat) > 0) {
			if (atoi(stat) != 1)
				pr_err("/proc/self/stat says pid %d", atoi(stat));
			free(stat);
		}
	}
	if (kill(orphan, SIGTERM))
		pr_err("can't signal the orphan %d", orphan);
	if (waitpid(orphan, &status, 0) != orphan)
		pr_err("the orphan %d is not our child", orphan);
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		pr_err("the orphan's checks failed (status %#x)", status);
	test_children_check();
	test_result();
	return 0;
}
