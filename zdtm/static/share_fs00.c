/*
 * share_fs00: a child made with clone(CLONE_FS) shares its cwd, root and umask
 * with its parent, and comes back sharing them: kcmp KCMP_FS says so, the
 * child still has the umask and cwd set before the dump, and a chdir or a
 * umask of the parent after restore shows in the child's /proc entries.
 */
#include "zdtmtst.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KCMP_FS 3

static char stack[64 * 1024] __attribute__((aligned(16)));

static int kid(void *arg)
{
	(void)arg;
	for (;;)
		syscall(SYS_pause);	/* no libc state: it may be the parent's */
	return 0;
}

/* The child's umask as its /proc status shows it, -1 if not found. */
static int umask_of(pid_t pid)
{
	char path[64], line[256];
	unsigned int mask;
	int ret = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &mask) == 1)
			ret = (int)mask;
	fclose(f);
	return ret;
}

/* Whether the child's cwd is the directory `want`. */
static int cwd_is(pid_t pid, const char *want)
{
	char path[64], got[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	n = readlink(path, got, sizeof(got) - 1);
	if (n < 0)
		return 0;
	got[n] = '\0';
	return strcmp(got, want) == 0;
}

int main(int argc, char **argv)
{
	char here[PATH_MAX];
	pid_t pid, me;
	int status;

	test_init(argc, argv);
	me = getpid();
	if (!getcwd(here, sizeof(here)))
		fail("getcwd");
	umask(027);
	pid = clone(kid, stack + sizeof(stack), CLONE_FS | SIGCHLD, NULL);
	if (pid < 0)
		fail("clone");
	if (syscall(SYS_kcmp, me, pid, KCMP_FS, 0, 0) != 0)
		fail("kcmp: not shared before the dump");
	test_daemon();
	test_waitsig();
	if (syscall(SYS_kcmp, me, pid, KCMP_FS, 0, 0) != 0)
		pr_err("kcmp KCMP_FS: the child no longer shares its fs info with its parent");
	if (umask_of(pid) != 027)
		pr_err("the child's umask is %#o, not 027", umask_of(pid));
	if (!cwd_is(pid, here))
		pr_err("the child's cwd is not %s", here);
	umask(022);
	if (umask_of(pid) != 022)
		pr_err("umask(022) of the parent: the child's is %#o", umask_of(pid));
	if (chdir("/"))
		pr_err("chdir /");
	else if (!cwd_is(pid, "/"))
		pr_err("chdir(\"/\") of the parent: the child's cwd did not follow");
	if (chdir(here))
		pr_err("chdir back to %s", here);
	umask(027);
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, __WALL) != pid || !WIFSIGNALED(status))
		pr_err("waitpid of the child: %#x", status);
	test_result();
	return 0;
}
