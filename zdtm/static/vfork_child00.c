/*
 * vfork_child00: a child created with vfork() and exec'd before the dump is
 * alive, exec'd and ours after restore.
 *
 * The test vfork()s and the child execs the test binary itself in a helper
 * mode ("vfork_child00 --helper PPID FD"): it installs a SIGUSR1 handler,
 * reports on a pipe that it runs, and waits.  After restore the parent
 * checks the child: same pid, still its child (ppid in /proc/PID/stat),
 * running the exec'd image (cmdline is the helper's, exe is our binary),
 * not stopped or zombie; then SIGUSR1 makes the helper exit with a status
 * that says whether its own getppid() was right, and the parent reaps it.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define HELPER_OK	42
#define HELPER_BADPPID	43

static volatile sig_atomic_t usr1;

static void on_usr1(int sig)
{
	(void)sig;
	usr1 = 1;
}

static int helper(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigset_t none;
	pid_t ppid;
	int fd;

	if (argc != 4)
		return 2;
	ppid = atoi(argv[2]);
	fd = atoi(argv[3]);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		return 3;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (write(fd, "E", 1) != 1)
		return 4;
	close(fd);
	while (!usr1)
		pause();
	return getppid() == ppid ? HELPER_OK : HELPER_BADPPID;
}

static char proc_state(pid_t pid, pid_t *ppid)
{
	char path[64], *buf, *p, st = '?';

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (test_read_file(path, &buf) < 0)
		return '-';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%c %d", &st, ppid) != 2)
		st = '?';
	free(buf);
	return st;
}

int main(int argc, char **argv)
{
	char ppid_s[16], fd_s[16], path[64], c, *cmd;
	struct stat self_st, child_st;
	int p[2], status;
	pid_t pid, ppid;
	ssize_t n;

	if (argc > 1 && !strcmp(argv[1], "--helper"))
		return helper(argc, argv);

	test_init(argc, argv);

	if (pipe(p))
		fail("pipe");
	snprintf(ppid_s, sizeof(ppid_s), "%d", getpid());
	snprintf(fd_s, sizeof(fd_s), "%d", p[1]);
	pid = vfork();
	if (pid < 0)
		fail("vfork");
	if (pid == 0) {
		close(p[0]);
		execl("/proc/self/exe", test_name, "--helper", ppid_s, fd_s, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		fail("the exec'd child did not report");
	close(p[0]);
	if (stat("/proc/self/exe", &self_st))
		fail("stat /proc/self/exe");

	test_daemon();
	test_waitsig();

	ppid = 0;
	c = proc_state(pid, &ppid);
	if (c != 'S' || ppid != getpid())
		pr_err("child %d: state '%c', ppid %d (expected S, %d)", pid, c, ppid, getpid());
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	n = test_read_file(path, &cmd);
	if (n < 0)
		pr_err("can't read %s", path);
	else {
		size_t l0 = strlen(test_name);

		if ((size_t)n < l0 + 10 || strcmp(cmd, test_name) ||
		    strcmp(cmd + l0 + 1, "--helper") || strcmp(cmd + l0 + 10, ppid_s))
			pr_err("child %d: cmdline is not the helper's", pid);
		free(cmd);
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	if (stat(path, &child_st) || child_st.st_ino != self_st.st_ino ||
	    child_st.st_dev != self_st.st_dev)
		pr_err("child %d: exe is not the test binary", pid);

	if (kill(pid, SIGUSR1))
		pr_err("kill(%d, SIGUSR1)", pid);
	if (waitpid(pid, &status, 0) != pid)
		pr_err("waitpid(%d): not our child", pid);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != HELPER_OK)
		pr_err("helper ended with status %#x (want exit %d; %d: wrong ppid)", status,
		       HELPER_OK, HELPER_BADPPID);
	test_result();
	return 0;
}
