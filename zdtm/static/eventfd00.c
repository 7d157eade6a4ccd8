/*
 * eventfd00: eventfds keep their counter, mode and flags.
 *
 * A plain eventfd holding a counter above 32 bits, a semaphore eventfd
 * holding 3 (O_NONBLOCK), and a dup sharing the first one.  After restore:
 * the counter reads back exactly (then the fd is empty: EAGAIN), the
 * semaphore gives 1 three times and then EAGAIN, the dup is the same object
 * (a write through one is read through the other), flags are kept.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define BIG	0x123456789abcULL

int main(int argc, char **argv)
{
	int plain, sem, dup_fd, i, fl;
	uint64_t v;

	test_init(argc, argv);

	plain = eventfd(0, 0);
	sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
	if (plain < 0 || sem < 0)
		fail("eventfd");
	v = BIG;
	if (write(plain, &v, sizeof(v)) != sizeof(v))
		fail("write to the eventfd");
	dup_fd = dup(plain);
	if (dup_fd < 0)
		fail("dup");

	test_daemon();
	test_waitsig();

	fl = fcntl(plain, F_GETFL);
	if (fl & O_NONBLOCK)
		pr_err("the plain eventfd became O_NONBLOCK");
	fcntl(plain, F_SETFL, fl | O_NONBLOCK);	/* shared with the dup */
	if (!(fcntl(dup_fd, F_GETFL) & O_NONBLOCK))
		pr_err("the dup does not share the description");
	if (read(plain, &v, sizeof(v)) != sizeof(v))
		pr_err("read of the plain eventfd");
	else if (v != BIG)
		pr_err("eventfd counter %#llx, expected %#llx",
		       (unsigned long long)v, (unsigned long long)BIG);
	if (read(dup_fd, &v, sizeof(v)) >= 0 || errno != EAGAIN)
		pr_err("the eventfd is not empty after reading its counter");
	v = 7;
	if (write(dup_fd, &v, sizeof(v)) != sizeof(v) ||
	    read(plain, &v, sizeof(v)) != sizeof(v) || v != 7)
		pr_err("a value written through the dup is not read through the original");

	if (!(fcntl(sem, F_GETFL) & O_NONBLOCK))
		pr_err("the semaphore eventfd lost O_NONBLOCK");
	for (i = 0; i < 3; i++) {
		if (read(sem, &v, sizeof(v)) != sizeof(v))
			pr_err("semaphore read %d failed", i);
		else if (v != 1)
			pr_err("semaphore read %d gave %llu, not 1", i, (unsigned long long)v);
	}
	if (read(sem, &v, sizeof(v)) >= 0 || errno != EAGAIN)
		pr_err("the semaphore eventfd has more than 3");

	test_result();
	return 0;
}
