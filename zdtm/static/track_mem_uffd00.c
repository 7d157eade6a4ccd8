/* track_mem_uffd00: a --track-mem chain (two --leave-running dumps, then the
 * real one): each image stores exactly the pages the test wrote in its area
 * since the previous dump (checked by the harness from ckpt-I.written); half
 * the area are holes, and neither they nor the tracking may add pages to the
 * counts.  The test's own userfaultfd use is unaffected by refcr's tracking:
 * before, between the dumps and after restore it creates its own uffd and
 * serves a MISSING fault of a separate area from a thread. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>
#include "zdtmtst.h"
#include "ckpt.h"

#define count_uffds() test_count_fds_to("anon_inode:[userfaultfd]")

#ifndef TRACK_HASH
#define TRACK_HASH 0		/* track_mem_fallback00 builds this with 1 */
#endif
#define PAGES	256
#define PG	4096

static char *area;

static void write_pages(const int *idx, int n, uint64_t seed)
{
	for (int i = 0; i < n; i++)
		datagen(area + (size_t)idx[i] * PG, PG, seed + idx[i]);
}

static void *toucher(void *arg)
{
	return (void *)(intptr_t)((volatile char *)arg)[123];	/* faults: MISSING */
}

/* The process's own userfaultfd, as any program would use it. */
static void own_uffd(const char *when)
{
	struct uffdio_api api = { .api = UFFD_API };
	char *b, *page;
	pthread_t t;
	void *got;
	int u = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (u < 0 || ioctl(u, UFFDIO_API, &api))
		fail("%s: own userfaultfd", when);
	b = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	page = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED || page == MAP_FAILED)
		fail("mmap");
	struct uffdio_register reg = { .range = { (unsigned long)b, 4 * PG }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(u, UFFDIO_REGISTER, &reg))
		fail("%s: own UFFDIO_REGISTER", when);
	if (pthread_create(&t, NULL, toucher, b))
		fail("pthread_create");
	struct pollfd pfd = { .fd = u, .events = POLLIN };
	struct uffd_msg msg;
	if (poll(&pfd, 1, 10000) != 1 || read(u, &msg, sizeof(msg)) != sizeof(msg))
		fail("%s: no fault event on the own uffd", when);
	if (msg.event != UFFD_EVENT_PAGEFAULT || (msg.arg.pagefault.address & ~(PG - 1UL)) != (unsigned long)b)
		pr_err("%s: fault event %d at %llx", when, msg.event, (unsigned long long)msg.arg.pagefault.address);
	memset(page, 0x5a, PG);
	struct uffdio_copy cp = { .dst = (unsigned long)b, .src = (unsigned long)page, .len = PG };
	if (ioctl(u, UFFDIO_COPY, &cp))
		fail("%s: UFFDIO_COPY", when);
	pthread_join(t, &got);
	if ((intptr_t)got != 0x5a)
		pr_err("%s: the faulting thread read %ld", when, (long)(intptr_t)got);
	close(u);
	munmap(b, 4 * PG);
	munmap(page, PG);
}

int main(int argc, char **argv)
{
	static const int first[] = { 3, 4, 5, 50, 99, 100, 255 };		/* 7 */
	static const int second[] = { 0, 1, 2, 3, 60, 61, 62, 63, 64, 65, 66, 200, 201 };	/* 13 */
	int bad = 0;

	test_init(argc, argv);
	area = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		fail("mmap");
	for (int p = 0; p < PAGES; p += 2)	/* odd pages stay holes until written */
		datagen(area + (size_t)p * PG, PG, p);
	own_uffd("before the chain");	/* also leaves glibc's thread stack cache and handler in place */
	test_daemon();

	test_checkpoint(1);
	if (count_uffds() != (TRACK_HASH ? 0 : 1))
		pr_err("%d userfaultfds after a --track-mem dump (method %s)", count_uffds(),
		       TRACK_HASH ? "hash" : "uffd-wp");
	own_uffd("during the chain");
	write_pages(first, 7, 1000);
	test_checkpoint_written(2, area, PAGES * PG, 7);
	test_checkpoint(2);
	own_uffd("during the chain");
	write_pages(second, 13, 2000);
	test_checkpoint_written(3, area, PAGES * PG, 13);
	test_checkpoint(3);		/* the real dump; returns on SIGTERM */
	test_waitsig();

	if (count_uffds())
		pr_err("%d userfaultfds after restore: refcr's tracking must be gone", count_uffds());
	own_uffd("after restore");
	for (int p = 0; p < PAGES; p++) {
		int64_t seed = p % 2 ? -1 : p;	/* -1: a hole, reads as zeros */

		for (int i = 0; i < 7; i++)
			if (first[i] == p)
				seed = 1000 + p;
		for (int i = 0; i < 13; i++)
			if (second[i] == p)
				seed = 2000 + p;
		if (seed < 0) {
			for (int i = 0; i < PG; i++)
				if (area[(size_t)p * PG + i]) {
					pr_err("page %d was never written, but is not zero", p);
					break;
				}
		} else if (datachk(area + (size_t)p * PG, PG, seed) && bad++ < 5)
			pr_err("page %d differs", p);
	}
	test_result();
	return 0;
}
