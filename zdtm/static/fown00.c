/*
 * fown00: file owners and I/O signals survive.
 *
 * The read end of a FIFO (a named pipe; anonymous pipes keep O_ASYNC but
 * their owner is the pipe kind's business) has O_ASYNC, owner = this
 * process (F_SETOWN_EX, F_OWNER_PID) and F_SETSIG SIGRTMIN+3; a regular file
 * has only an owner (F_SETOWN).  After restore the owners, the signal and
 * O_ASYNC read back the same, and writing into the FIFO makes SIGRTMIN+3
 * arrive with si_fd = the read end and si_code = POLL_IN.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct f_owner_ex own = { .type = F_OWNER_PID };
	struct timespec ts = { .tv_sec = 5 };
	int r, w, f, sig;
	siginfo_t si;
	sigset_t set;

	test_init(argc, argv);

	sig = SIGRTMIN + 3;
	sigemptyset(&set);
	sigaddset(&set, sig);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		fail("sigprocmask");
	if (mkfifo("fown00.fifo", 0600))
		fail("mkfifo");
	r = open("fown00.fifo", O_RDONLY | O_NONBLOCK);
	w = open("fown00.fifo", O_WRONLY);
	f = open("fown00.file", O_RDWR | O_CREAT, 0600);
	if (r < 0 || w < 0 || f < 0)
		fail("open");
	own.pid = getpid();
	if (fcntl(r, F_SETOWN_EX, &own) || fcntl(r, F_SETSIG, sig) ||
	    fcntl(r, F_SETFL, fcntl(r, F_GETFL) | O_ASYNC))
		fail("set up the fifo's owner");
	if (fcntl(f, F_SETOWN, getpid()))
		fail("F_SETOWN");

	test_daemon();
	test_waitsig();

	memset(&own, 0, sizeof(own));
	if (fcntl(r, F_GETOWN_EX, &own) || own.type != F_OWNER_PID || own.pid != getpid())
		pr_err("fifo owner: type %d pid %d", own.type, own.pid);
	if (fcntl(r, F_GETSIG) != sig)
		pr_err("F_GETSIG: %d, expected %d", fcntl(r, F_GETSIG), sig);
	if (!(fcntl(r, F_GETFL) & O_ASYNC))
		pr_err("O_ASYNC is gone");
	if (fcntl(f, F_GETOWN) != getpid())
		pr_err("file owner %d, expected %d", fcntl(f, F_GETOWN), getpid());

	if (sigtimedwait(&set, &si, &(struct timespec){ 0 }) >= 0)
		pr_err("signal %d was already pending", si.si_signo);
	if (write(w, "x", 1) != 1)
		pr_err("write to the fifo");
	memset(&si, 0, sizeof(si));
	if (sigtimedwait(&set, &si, &ts) != sig)
		pr_err("no signal %d after writing to the fifo", sig);
	else if (si.si_fd != r || si.si_code != POLL_IN)
		pr_err("siginfo: fd %d code %d, expected fd %d code %d", si.si_fd, si.si_code, r, POLL_IN);

	test_result();
	return 0;
}
