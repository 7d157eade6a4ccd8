/*
 * sigpending00: pending signals survive, with their siginfo.
 *
 * All test signals are blocked, then queued:
 *  - per-thread (tgkill/raise, rt_tgsigqueueinfo): SIGUSR1 (twice: coalesced),
 *    SIGRTMIN+4 x3 with distinct si_value;
 *  - process-wide (kill, sigqueue): SIGUSR2, SIGHUP, SIGRTMIN+1 x3 and
 *    SIGRTMAX x2 with distinct si_value.
 * After restore the pending sets (sigpending, and SigPnd/ShdPnd in
 * /proc/self/status, which tell thread from process pending) are the same,
 * and sigtimedwait() on each signal returns every instance, RT ones in
 * queue order, with the same si_code, si_pid, si_uid and si_value (si_code
 * of raise() and kill() is learnt at start); then nothing is left pending.
 */
#include "zdtmtst.h"

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct expect {
	int sig;
	int code;
	int value;	/* for SI_QUEUE */
};

static struct expect exp[32];
static int nexp;

static void add(int sig, int code, int value)
{
	exp[nexp].sig = sig;
	exp[nexp].code = code;
	exp[nexp].value = value;
	nexp++;
}

static void tg_queue(int sig, int value)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = value;
	if (syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), sig, &si))
		fail("rt_tgsigqueueinfo(%d)", sig);
}

static void pqueue(int sig, int value)
{
	union sigval v = { .sival_int = value };

	if (sigqueue(getpid(), sig, v))
		fail("sigqueue(%d)", sig);
}

static char *status_lines(void)
{
	char *s, *out, *p;
	size_t l = 0;

	if (test_read_file("/proc/self/status", &s) < 0)
		fail("read /proc/self/status");
	out = calloc(1, 256);
	for (p = strtok(s, "\n"); p; p = strtok(NULL, "\n"))
		if (!strncmp(p, "SigPnd:", 7) || !strncmp(p, "ShdPnd:", 7))
			l += snprintf(out + l, 256 - l, "%s; ", p);
	free(s);
	return out;
}

int main(int argc, char **argv)
{
	const int sigs[] = { SIGUSR1, SIGUSR2, SIGHUP, SIGRTMIN + 1, SIGRTMIN + 4, SIGRTMAX };
	struct timespec zero = { 0, 0 };
	sigset_t set, pend_before, pend_after;
	char *st_before, *st_after;
	siginfo_t si;
	int k, sig, code_raise, code_kill;
	size_t i;

	test_init(argc, argv);

	sigemptyset(&set);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&set, sigs[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		fail("sigprocmask");

	/* Learn the si_code the kernel gives raise() and kill(). */
	raise(SIGUSR1);
	if (sigtimedwait(&set, &si, &zero) != SIGUSR1)
		fail("calibrating raise()");
	code_raise = si.si_code;
	kill(getpid(), SIGUSR1);
	if (sigtimedwait(&set, &si, &zero) != SIGUSR1)
		fail("calibrating kill()");
	code_kill = si.si_code;

	raise(SIGUSR1);
	raise(SIGUSR1);			/* coalesced */
	if (kill(getpid(), SIGUSR2) || kill(getpid(), SIGHUP))
		fail("kill");
	for (k = 0; k < 3; k++)
		pqueue(SIGRTMIN + 1, 100 + k);
	for (k = 0; k < 3; k++)
		tg_queue(SIGRTMIN + 4, 200 + k);
	for (k = 0; k < 2; k++)
		pqueue(SIGRTMAX, 300 + k);

	add(SIGHUP, code_kill, 0);
	add(SIGUSR1, code_raise, 0);
	add(SIGUSR2, code_kill, 0);
	for (k = 0; k < 3; k++)
		add(SIGRTMIN + 1, SI_QUEUE, 100 + k);
	for (k = 0; k < 3; k++)
		add(SIGRTMIN + 4, SI_QUEUE, 200 + k);
	for (k = 0; k < 2; k++)
		add(SIGRTMAX, SI_QUEUE, 300 + k);

	if (sigpending(&pend_before))
		fail("sigpending");
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		if (!sigismember(&pend_before, sigs[i]))
			fail("signal %d is not pending at start", sigs[i]);
	st_before = status_lines();

	test_daemon();
	test_waitsig();

	if (sigpending(&pend_after))
		fail("sigpending");
	for (sig = 1; sig <= 64; sig++)
		if (sigismember(&pend_before, sig) != sigismember(&pend_after, sig))
			pr_err("signal %d: pending %d -> %d", sig,
			       sigismember(&pend_before, sig), sigismember(&pend_after, sig));
	st_after = status_lines();
	if (strcmp(st_before, st_after))
		pr_err("/proc/self/status: '%s' -> '%s'", st_before, st_after);

	for (k = 0; k < nexp; k++) {
		struct expect *e = &exp[k];
		sigset_t one;

		sigemptyset(&one);
		sigaddset(&one, e->sig);
		sig = sigtimedwait(&one, &si, &zero);
		if (sig < 0) {
			pr_err("#%d: nothing pending, expected signal %d", k, e->sig);
			break;
		}
		if (sig != e->sig || si.si_signo != e->sig || si.si_code != e->code ||
		    si.si_pid != getpid() || si.si_uid != getuid() ||
		    (e->code == SI_QUEUE && si.si_value.sival_int != e->value))
			pr_err("#%d: got signal %d code %d pid %d uid %d value %d; "
			       "expected signal %d code %d pid %d uid %d value %d", k,
			       sig, si.si_code, si.si_pid, si.si_uid,
			       si.si_code == SI_QUEUE ? si.si_value.sival_int : 0,
			       e->sig, e->code, getpid(), getuid(), e->value);
	}
	sig = sigtimedwait(&set, &si, &zero);
	if (sig >= 0)
		pr_err("an extra signal %d (code %d) was pending", sig, si.si_code);

	test_result();
	return 0;
}
