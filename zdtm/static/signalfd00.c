/*
 * signalfd00: a signalfd keeps its signal set.
 *
 * SIGUSR1 and SIGRTMIN+3 are blocked and read through a signalfd
 * (O_NONBLOCK); SIGUSR2 is blocked too but not in the set.  After restore:
 * nothing is readable; SIGUSR2 raised is not delivered through the fd;
 * SIGUSR1 raised is; a queued SIGRTMIN+3 comes with its value; the fd was
 * not widened to other signals.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int read_sig(int fd, struct signalfd_siginfo *si)
{
	ssize_t n = read(fd, si, sizeof(*si));

	if (n == sizeof(*si))
		return si->ssi_signo;
	if (n < 0 && errno == EAGAIN)
		return 0;
	return -1;
}

int main(int argc, char **argv)
{
	struct signalfd_siginfo si;
	sigset_t set, blocked;
	union sigval val;
	int fd, sig;

	test_init(argc, argv);

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN + 3);
	blocked = set;
	sigaddset(&blocked, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &blocked, NULL))
		fail("sigprocmask");
	fd = signalfd(-1, &set, SFD_NONBLOCK);
	if (fd < 0)
		fail("signalfd");

	test_daemon();
	test_waitsig();

	if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
		pr_err("the signalfd lost O_NONBLOCK");
	if ((sig = read_sig(fd, &si)) != 0)
		pr_err("the signalfd has something to read before any signal: %d", sig);
	raise(SIGUSR2);
	if ((sig = read_sig(fd, &si)) != 0)
		pr_err("SIGUSR2 (not in the set) read through the signalfd: %d", sig);
	raise(SIGUSR1);
	if ((sig = read_sig(fd, &si)) != SIGUSR1)
		pr_err("SIGUSR1 not read through the signalfd: %d", sig);
	val.sival_int = 4242;
	if (sigqueue(getpid(), SIGRTMIN + 3, val))
		fail("sigqueue");
	if ((sig = read_sig(fd, &si)) != SIGRTMIN + 3)
		pr_err("SIGRTMIN+3 not read through the signalfd: %d", sig);
	else if (si.ssi_int != 4242 || si.ssi_pid != (uint32_t)getpid())
		pr_err("SIGRTMIN+3 came with value %d from %u", si.ssi_int, si.ssi_pid);
	if ((sig = read_sig(fd, &si)) != 0)
		pr_err("more to read after the signals: %d", sig);

	test_result();
	return 0;
}
