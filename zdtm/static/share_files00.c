/*
 * share_files00: a child made with clone(CLONE_FILES) shares its fd table
 * with its parent, and comes back sharing it: kcmp KCMP_FILES says so, the
 * pipe opened before the dump is in both (the same description: kcmp
 * KCMP_FILE), and an fd the parent opens or closes after restore shows
 * (or is gone) in the child's /proc fd directory.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KCMP_FILE 0
#define KCMP_FILES 2

static char stack[64 * 1024] __attribute__((aligned(16)));

static int kid(void *arg)
{
	(void)arg;
	for (;;)
		syscall(SYS_pause);	/* no libc state: it may be the parent's */
	return 0;
}

/* Whether fd is open in the child's table, as its /proc entry shows. */
static int child_has(pid_t pid, int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	return access(path, F_OK) == 0;
}

int main(int argc, char **argv)
{
	pid_t pid, me;
	int p[2], fd, status;

	test_init(argc, argv);
	me = getpid();
	if (pipe(p))
		fail("pipe");
	pid = clone(kid, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL);
	if (pid < 0)
		fail("clone");
	if (syscall(SYS_kcmp, me, pid, KCMP_FILES, 0, 0) != 0)
		fail("kcmp: not shared before the dump");
	test_daemon();
	test_waitsig();
	if (syscall(SYS_kcmp, me, pid, KCMP_FILES, 0, 0) != 0)
		pr_err("kcmp KCMP_FILES: the child no longer shares its fd table with its parent");
	if (syscall(SYS_kcmp, me, pid, KCMP_FILE, p[1], p[1]) != 0)
		pr_err("kcmp KCMP_FILE: the pipe's fd %d is not the same file in the child", p[1]);
	if (write(p[1], "x", 1) != 1)
		pr_err("write to the pipe");
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0)
		pr_err("open /dev/null");
	else if (!child_has(pid, fd))
		pr_err("fd %d the parent opened after restore is not in the child's table", fd);
	if (fd >= 0 && (close(fd) || child_has(pid, fd)))
		pr_err("fd %d the parent closed after restore is still in the child's table", fd);
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, __WALL) != pid || !WIFSIGNALED(status))
		pr_err("waitpid of the child: %#x", status);
	test_result();
	return 0;
}
