/*
 * vfork_pending00: a vfork() child that has not exec'ed (or exited) yet:
 * its parent waits inside the kernel until it does, which no restore can
 * make again (the parent would return from vfork early).  The dump must be
 * refused with one line naming it (cr-opts.json "refuse"; crfail: the real
 * dump fails too), and both must run on unchanged: the parent still inside
 * vfork, the child released by a signal exits and the parent goes on.
 */
#include "zdtmtst.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* SIGTERM pending for the root (it cannot take it inside vfork): ShdPnd bit 15 */
static int root_has_sigterm(pid_t root)
{
	char path[64], *text = NULL, *p;
	unsigned long long pend = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", root);
	if (test_read_file(path, &text) < 0)
		return 0;
	p = strstr(text, "ShdPnd:");
	if (p)
		pend = strtoull(p + 7, NULL, 16);
	free(text);
	return (pend >> (SIGTERM - 1)) & 1;
}

int main(int argc, char **argv)
{
	pid_t pid, root;
	int status, pfd[2];
	char c = 0;

	test_init(argc, argv);
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"waits in vfork() for a child\"}]}");
	if (pipe(pfd))
		fail("pipe");
	root = getpid();
	if (test_fork() == 0) {
		/* releases the vfork child once the root is told to end */
		test_child_ready();
		while (!root_has_sigterm(root))
			usleep(10000);
		if (write(pfd[1], "x", 1) != 1)
			pr_err("write to the vfork child");
		test_child_exit();
	}
	test_daemon();
	pid = vfork();
	if (pid == 0) {
		/* it shares our memory and stack: raw syscalls only */
		syscall(SYS_read, pfd[0], &c, 1);
		syscall(SYS_exit, 7);
	}
	if (pid < 0)
		fail("vfork");
	/* here only once the child has exited: after the failed dump, on SIGTERM */
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 7)
		pr_err("the vfork child did not exit with 7 (%#x)", status);
	test_waitsig();
	test_children_check();
	test_result();
	return 0;
}
