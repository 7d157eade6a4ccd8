/*
 * pidfd00: a pidfd (pidfd_open) of a live child.
 * refcr cannot restore it yet, so the dump must be refused with one line
 * naming it (cr-opts.json "refuse"; crfail: the real dump fails too), and
 * the process must survive unchanged with the object still usable.
 */
#include "zdtmtst.h"

#include <linux/aio_abi.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t kid;
	int pfd;

	test_init(argc, argv);
	kid = test_fork();
	if (kid == 0) {
		test_child_ready();
		test_waitsig();
		test_child_exit();
	}
	pfd = syscall(SYS_pidfd_open, kid, 0);
	if (pfd < 0)
		fail("pidfd_open");
#define still_works() (syscall(SYS_pidfd_send_signal, pfd, 0, NULL, 0) == 0 && test_children_check() == 0)
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"anon_inode:[pidfd]\"}]}");
	test_daemon();
	test_waitsig();
	if (!still_works())
		pr_err("the object does not work after the failed dump");
	test_result();
	return 0;
}
