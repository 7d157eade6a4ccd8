/*
 * aio00: an aio context (io_setup) with its ring mapped in the process.
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
	aio_context_t ctx = 0;

	test_init(argc, argv);
	if (syscall(SYS_io_setup, 16, &ctx))
		fail("io_setup");
#define still_works() (syscall(SYS_io_destroy, ctx) == 0)
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"an aio ring (io_setup)\"}]}");
	test_daemon();
	test_waitsig();
	if (!still_works())
		pr_err("the object does not work after the failed dump");
	test_result();
	return 0;
}
