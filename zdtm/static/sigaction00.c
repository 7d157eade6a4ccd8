/*
 * sigaction00: signal dispositions survive.
 *
 * Handlers with various sa_flags and sa_masks, SIG_IGN, SIG_DFL, and the
 * sa_restorer glibc sets, for every signal, compared through the raw
 * rt_sigaction syscall (the kernel's view).  The alternate signal stack is
 * compared too.  After restore the handlers must still run: with their
 * sa_mask applied, SA_NODEFER, SA_RESETHAND resetting to SIG_DFL, SA_SIGINFO
 * delivering siginfo, and SA_ONSTACK running on the alternate stack.
 */
#include "zdtmtst.h"

#include <sys/syscall.h>
#include <unistd.h>

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

#define NSIG_K 64

static int sig_rt(int n)
{
	return SIGRTMIN + n;
}

static volatile sig_atomic_t h1_count, h2_count, h3_count, info_ok;
static sigset_t h1_mask, h2_mask;
static volatile uintptr_t h3_stack_addr;

static void h1(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	h1_count++;
	sigprocmask(SIG_BLOCK, NULL, &h1_mask);
	if (si && si->si_signo == sig && si->si_pid == getpid())
		info_ok = 1;
}

static void h2(int sig)
{
	(void)sig;
	h2_count++;
	sigprocmask(SIG_BLOCK, NULL, &h2_mask);
}

static void h3(int sig)
{
	volatile int local;

	(void)sig;
	h3_count++;
	h3_stack_addr = (uintptr_t)&local;
}

static int set(int sig, void *handler, int flags, const int *mask_sigs)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	if (flags & SA_SIGINFO)
		sa.sa_sigaction = handler;
	else
		sa.sa_handler = handler;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	for (; mask_sigs && *mask_sigs; mask_sigs++)
		sigaddset(&sa.sa_mask, *mask_sigs);
	return sigaction(sig, &sa, NULL);
}

static void get_all(struct ksigaction *ks)
{
	int sig;

	for (sig = 1; sig <= NSIG_K; sig++)
		if (syscall(SYS_rt_sigaction, sig, NULL, &ks[sig], 8))
			fail("rt_sigaction(%d)", sig);
}

#define ALTSTACK_SIZE (64 * 1024)

int main(int argc, char **argv)
{
	static struct ksigaction before[NSIG_K + 1], after[NSIG_K + 1];
	static char altstack[ALTSTACK_SIZE] __attribute__((aligned(64)));
	const int m_usr1[] = { SIGUSR2, SIGHUP, 0 };
	const int m_usr2[] = { SIGRTMIN + 3, SIGQUIT, 0 };
	int m_rt[NSIG_K + 1], i, n = 0, sig;
	stack_t ss, ss_after;
	struct sigaction sa;

	test_init(argc, argv);

	for (sig = 1; sig <= NSIG_K; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && sig % 3)
			m_rt[n++] = sig;
	m_rt[n] = 0;

	ss.ss_sp = altstack;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL))
		fail("sigaltstack");
	datagen(altstack, 4096, 9);	/* the bottom; handlers use the top */

	if (set(SIGUSR1, h1, SA_SIGINFO | SA_RESTART, m_usr1) ||
	    set(SIGUSR2, h2, SA_NODEFER | SA_RESETHAND, m_usr2) ||
	    set(SIGHUP, SIG_IGN, 0, NULL) ||
	    set(SIGALRM, SIG_IGN, SA_RESTART, m_usr1) ||
	    set(SIGINT, h3, SA_ONSTACK, NULL) ||
	    set(SIGQUIT, h2, 0, NULL) ||
	    set(SIGCHLD, h2, SA_NOCLDSTOP | SA_NOCLDWAIT | SA_RESTART, NULL) ||
	    set(SIGPIPE, SIG_DFL, 0, NULL) ||
	    set(sig_rt(2), h1, SA_SIGINFO | SA_RESTART | SA_ONSTACK, m_rt) ||
	    set(sig_rt(7), SIG_IGN, 0, NULL) ||
	    set(SIGRTMAX, h3, SA_NODEFER, m_usr1))
		fail("sigaction");
	/* A raw one without SA_RESTORER, handler never run: just compared. */
	{
		struct ksigaction k = { .handler = (void *)h2, .flags = 0, .mask = 0x5555 };

		if (syscall(SYS_rt_sigaction, SIGWINCH, &k, NULL, 8))
			fail("raw rt_sigaction");
	}

	get_all(before);
	if (!(before[SIGUSR1].flags & 0x04000000) || !before[SIGUSR1].restorer)
		fail("glibc did not set SA_RESTORER");

	test_daemon();
	test_waitsig();

	get_all(after);
	for (sig = 1; sig <= NSIG_K; sig++) {
		struct ksigaction *b = &before[sig], *a = &after[sig];

		if (b->handler != a->handler || b->flags != a->flags ||
		    b->restorer != a->restorer || b->mask != a->mask)
			pr_err("signal %d: handler %p flags %#lx restorer %p mask %#llx -> "
			       "handler %p flags %#lx restorer %p mask %#llx", sig,
			       b->handler, b->flags, b->restorer, (unsigned long long)b->mask,
			       a->handler, a->flags, a->restorer, (unsigned long long)a->mask);
	}

	if (sigaltstack(NULL, &ss_after))
		fail("sigaltstack");
	if (ss_after.ss_sp != ss.ss_sp || ss_after.ss_size != ss.ss_size ||
	    ss_after.ss_flags != 0)
		pr_err("sigaltstack: sp %p size %zu flags %#x -> sp %p size %zu flags %#x",
		       ss.ss_sp, ss.ss_size, ss.ss_flags, ss_after.ss_sp, ss_after.ss_size,
		       ss_after.ss_flags);
	if (datachk(altstack, 4096, 9))
		pr_err("alternate stack memory changed");

	/* The handlers still work as set up. */
	raise(SIGUSR1);
	if (h1_count != 1 || !info_ok)
		pr_err("SIGUSR1: handler ran %d times, siginfo ok %d", h1_count, info_ok);
	else if (!sigismember(&h1_mask, SIGUSR1) || !sigismember(&h1_mask, SIGUSR2) ||
		 !sigismember(&h1_mask, SIGHUP) || sigismember(&h1_mask, SIGQUIT))
		pr_err("SIGUSR1 handler ran with the wrong mask");

	raise(SIGUSR2);
	if (h2_count != 1)
		pr_err("SIGUSR2: handler ran %d times", h2_count);
	else if (sigismember(&h2_mask, SIGUSR2) || !sigismember(&h2_mask, SIGRTMIN + 3) ||
		 !sigismember(&h2_mask, SIGQUIT))
		pr_err("SIGUSR2 handler ran with the wrong mask (SA_NODEFER, sa_mask)");
	if (sigaction(SIGUSR2, NULL, &sa) || sa.sa_handler != SIG_DFL)
		pr_err("SA_RESETHAND did not reset SIGUSR2 to SIG_DFL");

	raise(SIGHUP);	/* ignored: we survive */

	raise(SIGINT);
	if (h3_count != 1)
		pr_err("SIGINT: handler ran %d times", h3_count);
	else if (h3_stack_addr < (uintptr_t)altstack ||
		 h3_stack_addr >= (uintptr_t)altstack + ALTSTACK_SIZE)
		pr_err("SA_ONSTACK handler ran at %#lx, not on the alternate stack %p",
		       (unsigned long)h3_stack_addr, (void *)altstack);

	for (i = 0; i < 2; i++)
		raise(sig_rt(2));
	if (h1_count != 3)
		pr_err("SIGRTMIN+2: handler count %d, expected 3", h1_count);

	test_result();
	return 0;
}
