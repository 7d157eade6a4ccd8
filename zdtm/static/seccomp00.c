/*
 * seccomp00: seccomp filters and strict mode survive, and refcr's own
 * injected syscalls are neither blocked nor fatal.
 *
 * The root (no_new_privs) installs a filter that kills the process on
 * sigaltstack and getitimer (both of which refcr injects at the dump) and
 * fails personality with EPERM; one of its threads adds its own filter
 * (with SECCOMP_FILTER_FLAG_LOG) that fails getppid with EACCES.  A child
 * inherits the root's filter, starts a thread and installs a filter on both
 * with TSYNC.  Another child enters strict mode and blocks in read().
 * After restore: the filters act as before in the right threads, the first
 * child can still install a filter with TSYNC (its threads share their
 * filters, as TSYNC requires), and the strict child answers over its pipe
 * and exits with SYS_exit.  The harness compares Seccomp, Seccomp_filters
 * and NoNewPrivs of every thread.
 */
#include "zdtmtst.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR_IS(nr, ret) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, (ret))
#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static struct sock_filter root_f[] = {
	LOAD_NR,
	NR_IS(__NR_sigaltstack, SECCOMP_RET_KILL_PROCESS),
	NR_IS(__NR_getitimer, SECCOMP_RET_KILL_PROCESS),
	NR_IS(__NR_personality, SECCOMP_RET_ERRNO | EPERM),
	ALLOW,
};
static struct sock_filter thread_f[] = {
	LOAD_NR,
	NR_IS(__NR_getppid, SECCOMP_RET_ERRNO | EACCES),
	ALLOW,
};
static struct sock_filter sync_f[] = {
	LOAD_NR,
	NR_IS(__NR_getpgid, SECCOMP_RET_ERRNO | ENOTTY),
	ALLOW,
};
static struct sock_filter sync2_f[] = {
	LOAD_NR,
	NR_IS(__NR_getsid, SECCOMP_RET_ERRNO | EDOM),
	ALLOW,
};

static long install(struct sock_filter *f, unsigned short n, unsigned int flags)
{
	struct sock_fprog prog = { .len = n, .filter = f };

	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}
#define INSTALL(f, flags) install(f, sizeof(f) / sizeof(f[0]), flags)

static volatile int go;
static struct test_notes tn;

static void wait_go(int v)
{
	while (go < v)
		syscall(SYS_futex, &go, FUTEX_WAIT_PRIVATE, go, NULL, NULL, 0);
}

static void set_go(int v)
{
	go = v;
	syscall(SYS_futex, &go, FUTEX_WAKE_PRIVATE, 8, NULL, NULL, 0);
}

static void *root_thread(void *arg)
{
	(void)arg;
	if (INSTALL(thread_f, SECCOMP_FILTER_FLAG_LOG))
		test_note(&tn, "thread filter: %m");
	set_go(1);
	wait_go(2);
	errno = 0;
	if (syscall(SYS_getppid) != -1 || errno != EACCES)
		test_note(&tn, "thread: getppid not failed with EACCES (errno %d)", errno);
	if (personality(0xffffffff) != -1 || errno != EPERM)
		test_note(&tn, "thread: personality not failed with EPERM");
	return NULL;
}

static void *sync_thread(void *arg)
{
	(void)arg;
	wait_go(2);
	errno = 0;
	if (getpgid(0) != -1 || errno != ENOTTY)
		test_note(&tn, "tsync thread: getpgid not failed with ENOTTY");
	if (getsid(0) != -1 || errno != EDOM)
		test_note(&tn, "tsync thread: getsid not failed with EDOM (the TSYNC after restore)");
	return NULL;
}

static void tsync_child(void)
{
	pthread_t th;
	long r;

	if (test_thread_create(&th, sync_thread, NULL))
		pr_err("pthread_create");
	if (INSTALL(sync_f, SECCOMP_FILTER_FLAG_TSYNC))
		pr_err("TSYNC filter: %m");
	test_child_ready();
	test_waitsig();
	r = INSTALL(sync2_f, SECCOMP_FILTER_FLAG_TSYNC);
	if (r)
		pr_err("TSYNC after restore: %ld (%m): the threads do not share their filters", r);
	set_go(2);
	if (test_thread_join(th))
		pr_err("tsync thread did not finish");
	else if (tn.errors)
		pr_err("%s", tn.msg);
	test_child_exit();
}

static pid_t strict_child(int *to, int *from)
{
	int a[2], b[2];
	pid_t pid;

	if (pipe(a) || pipe(b))
		fail("pipe");
	pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		char c = 0;

		close(a[1]);
		close(b[0]);
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT))
			_exit(5);
		if (write(b[1], "s", 1) != 1)
			syscall(SYS_exit, 6);
		if (read(a[0], &c, 1) != 1 || c != 'q')
			syscall(SYS_exit, 7);
		if (write(b[1], "a", 1) != 1)
			syscall(SYS_exit, 8);
		syscall(SYS_exit, 0);
	}
	close(a[0]);
	close(b[1]);
	*to = a[1];
	*from = b[0];
	return pid;
}

int main(int argc, char **argv)
{
	pthread_t th;
	pid_t sp;
	int to, from, st;
	char c;

	test_init(argc, argv);

	sp = strict_child(&to, &from);		/* before any filter: strict excludes them */
	if (read(from, &c, 1) != 1 || c != 's')
		fail("strict child did not start");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		fail("PR_SET_NO_NEW_PRIVS");
	if (INSTALL(root_f, 0))
		fail("root filter");
	if (test_fork() == 0)
		tsync_child();
	if (test_thread_create(&th, root_thread, NULL))
		fail("pthread_create");
	wait_go(1);
	if (tn.errors)
		fail("%s", tn.msg);
	test_children_wait_ready();

	test_daemon();
	test_waitsig();

	errno = 0;
	if (personality(0xffffffff) != -1 || errno != EPERM)
		pr_err("root: personality not failed with EPERM");
	if (syscall(SYS_getppid) == -1)
		pr_err("root: getppid failed (%m): the thread's filter is in the main thread");
	set_go(2);
	if (test_thread_join(th))
		pr_err("thread did not finish");
	else if (tn.errors)
		pr_err("%s", tn.msg);
	if (write(to, "q", 1) != 1 || read(from, &c, 1) != 1 || c != 'a')
		pr_err("strict child does not answer");
	if (waitpid(sp, &st, 0) != sp || !WIFEXITED(st) || WEXITSTATUS(st))
		pr_err("strict child: status %#x", st);
	test_children_kick(SIGTERM);
	if (test_children_wait())
		pr_err("the TSYNC child failed");
	test_result();
	return 0;
}
