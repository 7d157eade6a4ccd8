/*
 * share_sighand00: processes that share an address space with their parent
 * (clone CLONE_VM), one of them its signal handlers too (CLONE_SIGHAND),
 * come back sharing them (issue 14: the dump refused them).
 *
 * The root clones two children on stacks of its own: "both" with
 * CLONE_VM | CLONE_SIGHAND, "vm" with CLONE_VM alone (it has a copy of the
 * handlers as they were at the clone).  Each loops in pause(), with raw
 * syscalls only (the C library's state is the root's).  A 1 MiB buffer of
 * the root's is filled with a pattern before the dump.
 *
 * After restore: kcmp says the root and "both" share VM and SIGHAND, "vm"
 * shares VM only; the root then installs another SIGUSR1 handler and writes
 * a word, and signals both children: "both" runs the new handler (the same
 * table), "vm" the old one (its own); each handler reads the root's word
 * and the buffer's checksum and writes its answer into the root's memory,
 * where the root sees it (the same memory).  "vm" has a child of its own
 * (a plain fork: its copy of the memory), which must still be there, not
 * sharing the root's memory.
 */
#include "zdtmtst.h"

#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KCMP_VM 1
#define KCMP_SIGHAND 4
#define BUF (1 << 20)

static char stacks[2][64 * 1024] __attribute__((aligned(16)));
static unsigned char buf[BUF];
static volatile long word;			/* written by the root, read by the handlers */
static volatile long answer[2][2];		/* [child][0: old handler, 1: new one] */

static long sum(void)
{
	long s = 0;
	size_t i;

	for (i = 0; i < BUF; i += 64)
		s += buf[i];
	return s;
}

static int which(void)
{
	/* no getpid() of the C library: its cache is the root's */
	return syscall(SYS_gettid) == (long)answer[1][1] ? 1 : 0;
}

static void old_handler(int sig)
{
	answer[which()][0] = word + sum();
}

static void new_handler(int sig)
{
	answer[which()][1] = word * 2 + sum();
}

static volatile long grandkid;		/* "vm"'s own child, a plain fork: its own copy of the memory */

static int kid(void *arg)
{
	long pid;

	if (arg) {
		pid = syscall(SYS_fork);
		if (pid > 0)
			grandkid = pid;		/* the grandchild writes only its own copy */
	}
	for (;;)
		syscall(SYS_pause);
	return 0;
}

static pid_t clone_kid(int i, int flags)
{
	pid_t pid = clone(kid, stacks[i] + sizeof(stacks[i]), flags | SIGCHLD, i ? stacks : NULL);

	if (pid < 0)
		fail("clone %d", i);
	return pid;
}

static void check_kcmp(pid_t me, pid_t pid, const char *name, int vm, int sighand, const char *when)
{
	if ((syscall(SYS_kcmp, me, pid, KCMP_VM, 0, 0) == 0) != vm)
		pr_err("%s: %s %s the root's address space", when, name, vm ? "does not share" : "shares");
	if ((syscall(SYS_kcmp, me, pid, KCMP_SIGHAND, 0, 0) == 0) != sighand)
		pr_err("%s: %s %s the root's signal handlers", when, name, sighand ? "does not share" : "shares");
}

static int wait_answer(int i, int slot, long want)
{
	int n;

	for (n = 0; n < 1000 && answer[i][slot] != want; n++)
		usleep(10000);
	return answer[i][slot] == want;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = old_handler };
	pid_t me, kids[2];
	long s;
	int i, status;

	test_init(argc, argv);
	me = getpid();
	datagen(buf, BUF, 14);
	s = sum();
	sigaction(SIGUSR1, &sa, NULL);
	kids[0] = clone_kid(0, CLONE_VM | CLONE_SIGHAND);
	kids[1] = clone_kid(1, CLONE_VM);
	answer[1][1] = kids[1];		/* which() tells the children apart by this: overwritten below */
	while (!grandkid)
		usleep(1000);
	check_kcmp(me, kids[0], "both", 1, 1, "before");
	check_kcmp(me, kids[1], "vm", 1, 0, "before");

	test_daemon();
	test_waitsig();

	check_kcmp(me, kids[0], "both", 1, 1, "after");
	check_kcmp(me, kids[1], "vm", 1, 0, "after");
	sa.sa_handler = new_handler;
	sigaction(SIGUSR1, &sa, NULL);		/* the table of the root and "both" */
	word = 21;
	if (kill(kids[0], SIGUSR1) || !wait_answer(0, 1, 42 + s))
		pr_err("\"both\" did not run the root's new handler on the root's memory (answer %ld, %ld)",
		       answer[0][0], answer[0][1]);
	if (kill(kids[1], SIGUSR1) || !wait_answer(1, 0, 21 + s))
		pr_err("\"vm\" did not run its own (old) handler on the root's memory (answer %ld, %ld)",
		       answer[1][0], answer[1][1]);
	if (kill(grandkid, 0) || syscall(SYS_kcmp, me, grandkid, KCMP_VM, 0, 0) == 0)
		pr_err("the grandchild is gone or shares the root's memory");
	kill(grandkid, SIGKILL);	/* "vm"'s child: reaped by it, or by init once "vm" is gone */
	for (i = 0; i < 2; i++) {
		kill(kids[i], SIGKILL);
		if (waitpid(kids[i], &status, __WALL) != kids[i] || !WIFSIGNALED(status))
			pr_err("waitpid of child %d: %#x", i, status);
	}
	test_result();
	return 0;
}
