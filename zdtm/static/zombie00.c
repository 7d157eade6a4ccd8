/*
 * zombie00: unreaped children (zombies) survive with their exit status.
 *
 * Children exit with different codes or are killed by different signals
 * (none that dumps core) and are not reaped before the dump; their parent
 * only makes sure they are zombies (waitid with WNOWAIT).  A live child is
 * there too.  After restore: each zombie is still a zombie with the same
 * pid, child of the root (/proc/PID/stat), waitpid() on it returns exactly
 * the wait status seen before, and afterwards there is nothing else to
 * reap.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/wait.h>

struct zombie {
	int code;	/* exit code, or -signal */
	pid_t pid;
	int status;	/* raw wait status seen before the dump */
};

static struct zombie zombies[] = {
	{ 0 }, { 1 }, { 42 }, { 255 },
	{ -SIGKILL }, { -SIGUSR2 }, { -SIGHUP }, { -40 },	/* a real-time signal (SIGRTMIN+6 in glibc) */
};

static char proc_state(pid_t pid, pid_t *ppid)
{
	char path[64], *buf, *p, st = '?';

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (test_read_file(path, &buf) < 0)
		return '-';
	p = strrchr(buf, ')');
	if (p && sscanf(p + 2, "%c %d", &st, ppid) != 2)
		st = '?';
	free(buf);
	return st;
}

int main(int argc, char **argv)
{
	siginfo_t si;
	size_t i;
	pid_t live, ppid;
	int status;

	test_init(argc, argv);

	live = test_fork();
	if (live == 0) {
		test_child_ready();
		test_waitsig();
		test_child_exit();
	}

	for (i = 0; i < ARRAY_SIZE(zombies); i++) {
		struct zombie *z = &zombies[i];

		z->pid = fork();
		if (z->pid < 0)
			fail("fork");
		if (z->pid == 0) {
			if (z->code >= 0)
				_exit(z->code);
			sigset_t s;

			signal(-z->code, SIG_DFL);
			sigemptyset(&s);
			sigaddset(&s, -z->code);
			sigprocmask(SIG_UNBLOCK, &s, NULL);
			kill(getpid(), -z->code);
			_exit(100);	/* not reached */
		}
	}
	for (i = 0; i < ARRAY_SIZE(zombies); i++) {
		struct zombie *z = &zombies[i];

		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, z->pid, &si, WEXITED | WNOWAIT))
			fail("waitid(%d)", z->pid);
		if (z->code >= 0 ? (si.si_code != CLD_EXITED || si.si_status != z->code)
				 : (si.si_code != CLD_KILLED || si.si_status != -z->code))
			fail("child %d: si_code %d si_status %d, planned %d", z->pid,
			     si.si_code, si.si_status, z->code);
		z->status = z->code >= 0 ? (z->code << 8) : -z->code;
		if (proc_state(z->pid, &ppid) != 'Z')
			fail("child %d is not a zombie", z->pid);
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < ARRAY_SIZE(zombies); i++) {
		struct zombie *z = &zombies[i];
		char st;

		ppid = 0;
		st = proc_state(z->pid, &ppid);
		if (st != 'Z' || ppid != getpid())
			pr_err("zombie %d (code %d): state '%c' ppid %d after restore", z->pid,
			       z->code, st, ppid);
	}
	/* Reap in reverse order of creation. */
	for (i = ARRAY_SIZE(zombies); i-- > 0;) {
		struct zombie *z = &zombies[i];
		pid_t r = waitpid(z->pid, &status, WNOHANG);

		if (r != z->pid)
			pr_err("waitpid(%d) = %d: zombie (code %d) not reapable", z->pid,
			       r, z->code);
		else if (status != z->status)
			pr_err("zombie %d: wait status %#x, expected %#x", z->pid, status,
			       z->status);
	}
	test_children_check();
	errno = 0;
	if (waitpid(-1, &status, WNOHANG) != -1 || errno != ECHILD)
		pr_err("something else is left to reap");
	test_result();
	return 0;
}
