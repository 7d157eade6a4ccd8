/*
 * share_sighand00: a child made with clone(CLONE_SIGHAND | CLONE_VM) shares its signal handlers (and memory)
 * with its parent.  refcr cannot restore that sharing yet, so the dump must
 * be refused with one line naming it (cr-opts.json "refuse", and crfail: the
 * real dump fails too) and both processes must survive it unchanged: still
 * sharing it (kcmp KCMP_SIGHAND), the child still alive.
 */
#include "zdtmtst.h"

#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KCMP_VM 1
#define KCMP_FILES 2
#define KCMP_FS 3
#define KCMP_SIGHAND 4

static char stack[64 * 1024] __attribute__((aligned(16)));

static int kid(void *arg)
{
	(void)arg;
	for (;;)
		syscall(SYS_pause);	/* no libc state: it may be the parent's */
	return 0;
}

int main(int argc, char **argv)
{
	pid_t pid, me;
	int status;

	test_init(argc, argv);
	me = getpid();
	pid = clone(kid, stack + sizeof(stack), CLONE_SIGHAND | CLONE_VM | SIGCHLD, NULL);
	if (pid < 0)
		fail("clone");
	if (syscall(SYS_kcmp, me, pid, KCMP_SIGHAND, 0, 0) != 0)
		fail("kcmp: not shared before the dump");
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"share signal handlers (clone CLONE_SIGHAND)\"}]}");
	test_daemon();
	test_waitsig();
	if (syscall(SYS_kcmp, me, pid, KCMP_SIGHAND, 0, 0) != 0)
		pr_err("kcmp: no longer shared after the failed dump");
	if (kill(pid, 0))
		pr_err("the child is gone");
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, __WALL) != pid || !WIFSIGNALED(status))
		pr_err("waitpid of the child: %#x", status);
	test_result();
	return 0;
}
