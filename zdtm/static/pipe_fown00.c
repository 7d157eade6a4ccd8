/*
 * pipe_fown00: O_ASYNC I/O on an anonymous pipe survives.
 *
 * The read end has O_ASYNC, owner = this process (F_SETOWN_EX, F_OWNER_PID) and
 * F_SETSIG SIGRTMIN+4; the write end has an owner only (F_SETOWN, no O_ASYNC).
 * After restore: owners, signal and flags read back the same, and writing into
 * the pipe makes SIGRTMIN+4 arrive with si_fd = the read end's number in this
 * process and si_code = POLL_IN (the owner and O_ASYNC are set by the task, not
 * by the restorer: a signal naming the restorer's fd would be wrong).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct f_owner_ex own = { .type = F_OWNER_PID };
	struct timespec ts = { .tv_sec = 5 };
	int p[2], sig, r, w;
	siginfo_t si;
	sigset_t set;
	char c;

	test_init(argc, argv);

	sig = SIGRTMIN + 4;
	sigemptyset(&set);
	sigaddset(&set, sig);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		fail("sigprocmask");
	if (pipe2(p, O_NONBLOCK))
		fail("pipe");
	/* numbers the restorer would not pick for its own copies */
	r = dup2(p[0], 17);
	w = dup2(p[1], 18);
	if (r < 0 || w < 0)
		fail("dup2");
	close(p[0]);
	close(p[1]);
	own.pid = getpid();
	if (fcntl(r, F_SETOWN_EX, &own) || fcntl(r, F_SETSIG, sig) ||
	    fcntl(r, F_SETFL, fcntl(r, F_GETFL) | O_ASYNC))
		fail("set up the read end's owner");
	if (fcntl(w, F_SETOWN, getpid()))
		fail("F_SETOWN");

	test_daemon();
	test_waitsig();

	memset(&own, 0, sizeof(own));
	if (fcntl(r, F_GETOWN_EX, &own) || own.type != F_OWNER_PID || own.pid != getpid())
		pr_err("read end owner: type %d pid %d", own.type, own.pid);
	if (fcntl(r, F_GETSIG) != sig)
		pr_err("F_GETSIG: %d, expected %d", fcntl(r, F_GETSIG), sig);
	if ((fcntl(r, F_GETFL) & (O_ASYNC | O_NONBLOCK)) != (O_ASYNC | O_NONBLOCK))
		pr_err("read end flags %#x: O_ASYNC or O_NONBLOCK gone", fcntl(r, F_GETFL));
	if (fcntl(w, F_GETOWN) != getpid())
		pr_err("write end owner %d, expected %d", fcntl(w, F_GETOWN), getpid());
	if (fcntl(w, F_GETFL) & O_ASYNC)
		pr_err("the write end got O_ASYNC");

	if (sigtimedwait(&set, &si, &(struct timespec){ 0 }) >= 0)
		pr_err("signal %d was already pending", si.si_signo);
	if (write(w, "x", 1) != 1)
		pr_err("write to the pipe");
	memset(&si, 0, sizeof(si));
	if (sigtimedwait(&set, &si, &ts) != sig)
		pr_err("no signal %d after writing to the pipe", sig);
	else if (si.si_fd != r || si.si_code != POLL_IN)
		pr_err("siginfo: fd %d code %d, expected fd %d code %d", si.si_fd, si.si_code, r, POLL_IN);
	if (read(r, &c, 1) != 1 || c != 'x')
		pr_err("the byte did not come through");

	test_result();
	return 0;
}
