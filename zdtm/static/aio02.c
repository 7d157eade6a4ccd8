/*
 * aio02: a child holding the copy of its parent's aio ring that fork gave it
 * (issue 14).  The ring is a context of the parent's only: the child's area
 * has no context behind it (io_getevents through it is EINVAL), and refcr
 * does not map the parent's ring file into the child, so the dump is
 * refused with one line naming it (cr-opts.json "refuse"; crfail: the real
 * dump fails too).  Afterwards the parent's context still works, and the
 * child still sees the parent's ring through its copy.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	aio_context_t ctx = 0;
	struct iocb cb, *p = &cb;
	struct io_event ev;
	struct timespec ts = { 5, 0 };
	pid_t kid;
	int devnull;

	test_init(argc, argv);
	devnull = open("/dev/null", O_WRONLY);
	if (devnull < 0 || syscall(SYS_io_setup, 16, &ctx))
		fail("io_setup");
	kid = test_fork();
	if (kid == 0) {
		test_child_ready();
		test_waitsig();
		if (((unsigned *)ctx)[3] != 1)		/* the parent's tail, through the copy */
			fail("the child's copy of the ring does not show the parent's request");
		test_child_exit();
	}
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"is no context of its own\"}]}");
	test_daemon();
	test_waitsig();
	memset(&cb, 0, sizeof(cb));
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_fildes = devnull;
	cb.aio_buf = (unsigned long)"x";
	cb.aio_nbytes = 1;
	cb.aio_data = 7;
	if (syscall(SYS_io_submit, ctx, 1, &p) != 1 || syscall(SYS_io_getevents, ctx, 1, 1, &ev, &ts) != 1 ||
	    ev.data != 7)
		pr_err("the parent's context does not work after the failed dump");
	if (test_children_check())
		pr_err("the child");
	if (syscall(SYS_io_destroy, ctx))
		pr_err("io_destroy");
	test_result();
	return 0;
}
