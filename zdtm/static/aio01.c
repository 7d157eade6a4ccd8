/*
 * aio01: aio contexts in the states aio00 does not make (issue 14): a free
 * slot in the table of contexts, rings holding many completed events, one
 * of them wrapped, and a ring area with its own protection, advice and lock.
 *
 * Slot 0: a context made first and destroyed before the dump, so restore
 * must leave slot 0 free again.  c1 = io_setup(1) (slot 1, 127 events): 100
 * requests completed, none reaped.  c2 = io_setup(1) (slot 2): 100 made and
 * reaped, then 100 more not reaped, so its tail (73) is before its head
 * (100).  c3 = io_setup(1000) (slot 3, 16 pages, 2047 events): 2000 made and
 * reaped, then 70 more of which 3 are reaped (head 2003, tail 23); its area
 * is made read-only, MADV_DONTFORK and mlock'ed (the harness compares the
 * VmFlags).  Every request is a 1-byte write to /dev/null whose aio_data
 * counts the requests of its context.
 *
 * After restore: the headers (slot, nr, head, tail) are the same, each ring
 * gives back exactly its unreaped events in order, then takes and completes
 * a new request, and io_destroy works.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct ring {			/* the start of struct aio_ring (fs/aio.c) */
	unsigned id, nr, head, tail;
};

struct ctx {
	aio_context_t id;
	unsigned long long made, reaped;	/* aio_data of the next request / next event */
	struct ring header;
};

static struct iocb cb;

/* n requests, one by one (each its own aio_data) */
static void make(struct ctx *c, int n)
{
	struct iocb *p = &cb;

	for (int i = 0; i < n; i++) {
		cb.aio_data = c->made;
		if (syscall(SYS_io_submit, c->id, 1, &p) != 1)
			fail("io_submit %d of %d", i, n);
		c->made++;
	}
}

/* reap n events, which must be the next ones in order; returns how many came */
static int reap(struct ctx *c, int n, const char *when)
{
	struct io_event ev[256];
	struct timespec zero = { 0, 0 };
	int got = 0;

	while (got < n) {
		long k = syscall(SYS_io_getevents, c->id, 0, n - got > 256 ? 256 : n - got, ev, &zero);

		if (k <= 0)
			break;
		for (long i = 0; i < k; i++, c->reaped++)
			if (ev[i].data != c->reaped || ev[i].obj != (unsigned long)&cb || ev[i].res != 1) {
				pr_err("%s: ring %#lx: event data %llu res %lld, not %llu", when,
				       c->id, ev[i].data, ev[i].res, c->reaped);
				return got;
			}
		got += k;
	}
	return got;
}

static void setup(struct ctx *c, unsigned nr)
{
	memset(c, 0, sizeof(*c));
	if (syscall(SYS_io_setup, nr, &c->id))
		fail("io_setup(%u)", nr);
}

int main(int argc, char **argv)
{
	struct ctx gone, c[3];
	int devnull, left;

	test_init(argc, argv);
	devnull = open("/dev/null", O_WRONLY);
	if (devnull < 0)
		fail("/dev/null");
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_fildes = devnull;
	cb.aio_buf = (unsigned long)"x";
	cb.aio_nbytes = 1;
	setup(&gone, 1);
	setup(&c[0], 1);
	setup(&c[1], 1);
	setup(&c[2], 1000);
	make(&c[0], 100);
	make(&c[1], 100);
	reap(&c[1], 100, "before");
	make(&c[1], 100);
	for (int i = 0; i < 2000; i += 100) {
		make(&c[2], 100);
		reap(&c[2], 100, "before");
	}
	make(&c[2], 70);
	reap(&c[2], 3, "before");
	if (syscall(SYS_io_destroy, gone.id))
		fail("io_destroy");
	if (mprotect((void *)c[2].id, 16 * 4096, PROT_READ) || madvise((void *)c[2].id, 16 * 4096, MADV_DONTFORK) ||
	    mlock((void *)c[2].id, 16 * 4096))
		fail("mprotect/madvise/mlock of c3's ring");
	for (int i = 0; i < 3; i++) {
		memcpy(&c[i].header, (void *)c[i].id, sizeof(struct ring));
		test_msg("ring %d: slot %u nr %u head %u tail %u", i + 1, c[i].header.id, c[i].header.nr,
			 c[i].header.head, c[i].header.tail);
	}
	if (c[0].header.id != 1 || c[1].header.tail >= c[1].header.head || c[2].header.nr != 2047)
		pr_err("before: not the rings this test means to make");

	test_daemon();
	test_waitsig();

	for (int i = 0; i < 3; i++) {
		struct ring *now = (struct ring *)c[i].id;

		if (memcmp(now, &c[i].header, sizeof(struct ring)))
			pr_err("ring %d: slot %u nr %u head %u tail %u after restore", i + 1, now->id, now->nr,
			       now->head, now->tail);
		left = c[i].made - c[i].reaped;
		if (reap(&c[i], 1000, "after restore") != left)
			pr_err("ring %d: not its %d unreaped events", i + 1, left);
		make(&c[i], 1);
		if (reap(&c[i], 1, "new request") != 1)
			pr_err("ring %d: a new request is not reaped", i + 1);
		if (syscall(SYS_io_destroy, c[i].id))
			pr_err("ring %d: io_destroy", i + 1);
	}
	test_result();
	return 0;
}
