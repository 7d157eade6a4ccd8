/*
 * share_fs01: two siblings share cwd, root and umask, but not with their
 * parent (the first forked, the second made by it with clone(CLONE_FS |
 * CLONE_PARENT)).  refcr restores fs sharing only the way it forks, with the
 * parent, so the dump must be refused with one line naming it (cr-opts.json
 * "refuse", and crfail: the real dump fails too) and all three must survive it
 * unchanged: the siblings still sharing (kcmp KCMP_FS), the parent not.
 */
#include "zdtmtst.h"

#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KCMP_FS 3

static char stack[64 * 1024] __attribute__((aligned(16)));

static int kid(void *arg)
{
	(void)arg;
	for (;;)
		syscall(SYS_pause);	/* no libc state: it may be its sibling's */
	return 0;
}

/* Whether a and b share their fs info. */
static int same_fs(pid_t a, pid_t b)
{
	return syscall(SYS_kcmp, a, b, KCMP_FS, 0, 0) == 0;
}

int main(int argc, char **argv)
{
	pid_t first, second, me;
	int p[2], status;

	test_init(argc, argv);
	me = getpid();
	if (pipe(p))
		fail("pipe");
	first = fork();
	if (first < 0)
		fail("fork");
	if (first == 0) {
		second = clone(kid, stack + sizeof(stack), CLONE_FS | CLONE_PARENT | SIGCHLD, NULL);
		if (write(p[1], &second, sizeof(second)) != sizeof(second))
			_exit(1);
		for (;;)
			pause();
	}
	if (read(p[0], &second, sizeof(second)) != sizeof(second) || second < 0)
		fail("clone(CLONE_FS | CLONE_PARENT) in the first child");
	close(p[0]);
	close(p[1]);
	if (!same_fs(first, second) || same_fs(me, second))
		fail("kcmp: the siblings do not share their fs info (or share it with the parent)");
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"share cwd, root and umask (clone CLONE_FS): refcr cannot restore that "
			"sharing with a process that is not its parent\"}]}");
	test_daemon();
	test_waitsig();
	if (!same_fs(first, second))
		pr_err("kcmp: the siblings no longer share their fs info after the failed dump");
	if (same_fs(me, second))
		pr_err("kcmp: the parent shares its fs info after the failed dump");
	if (kill(first, 0) || kill(second, 0))
		pr_err("a child is gone");
	kill(first, SIGKILL);
	kill(second, SIGKILL);
	if (waitpid(first, &status, 0) != first || !WIFSIGNALED(status))
		pr_err("waitpid of the first child: %#x", status);
	if (waitpid(second, &status, __WALL) != second || !WIFSIGNALED(status))
		pr_err("waitpid of the second child: %#x", status);
	test_result();
	return 0;
}
