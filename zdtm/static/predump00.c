/* predump00: two `refcr pre-dump`s, then the real dump with the last one as
 * parent; restored from the dump.  Between them the test rewrites pages, drops
 * some (MADV_DONTNEED), unmaps a part and maps a new area; the pages stored by
 * each image are exactly those written since its parent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "zdtmtst.h"
#include "ckpt.h"

#define count_uffds() test_count_fds_to("anon_inode:[userfaultfd]")

#define PAGES	512
#define PG	4096

static char *area, *fresh, *sparse;

static void rewrite(size_t first, size_t n, uint64_t seed)
{
	for (size_t p = first; p < first + n; p++)
		datagen(area + p * PG, PG, seed + p);
}

int main(int argc, char **argv)
{
	int bad = 0;

	test_init(argc, argv);
	area = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	sparse = mmap(NULL, 1024 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED || sparse == MAP_FAILED)
		fail("mmap");
	rewrite(0, PAGES, 0);
	for (int i = 0; i < 1024; i += 100)
		sparse[i * PG] = (char)i + 1;
	test_daemon();

	test_checkpoint(1);			/* pre-dump 1: everything */
	rewrite(10, 20, 1000);
	test_checkpoint_written(2, area, PAGES * PG, 20);
	test_checkpoint(2);			/* pre-dump 2: 20 pages */
	if (count_uffds() > 1)
		pr_err("%d userfaultfds during the chain, expected at most refcr's one", count_uffds());
	rewrite(100, 30, 2000);
	rewrite(15, 1, 3000);			/* written again after pre-dump 2 */
	madvise(area + 200 * PG, 8 * PG, MADV_DONTNEED);	/* zero from now on */
	munmap(area + 400 * PG, 16 * PG);
	fresh = mmap(area + 400 * PG, 16 * PG, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (fresh == MAP_FAILED)
		fail("mmap fresh");
	for (int i = 0; i < 16; i++)
		datagen(fresh + i * PG, PG, 5000 + i);
	sparse[500 * PG] = 42;
	test_checkpoint_written(3, area, 200 * PG, 31);
	test_checkpoint(3);			/* announces the real dump; returns on SIGTERM */
	test_waitsig();

	for (size_t p = 0; p < PAGES; p++) {
		char *page = area + p * PG;
		uint64_t seed = p;

		if (p >= 400 && p < 416)
			seed = 5000 + p - 400;
		else if (p == 15)
			seed = 3000 + p;
		else if (p >= 100 && p < 130)
			seed = 2000 + p;
		else if (p >= 10 && p < 30)
			seed = 1000 + p;
		if (p >= 200 && p < 208) {
			for (int i = 0; i < PG; i++)
				if (page[i]) {
					pr_err("page %zu not zero after MADV_DONTNEED", p);
					break;
				}
			continue;
		}
		if (datachk(page, PG, seed) && bad++ < 5)
			pr_err("page %zu differs", p);
	}
	for (int i = 0; i < 1024; i++) {
		char want = i == 500 ? 42 : (i % 100 ? 0 : (char)i + 1);

		if (sparse[i * PG] != want)
			pr_err("sparse page %d: %d, not %d", i, sparse[i * PG], want);
	}
	if (count_uffds())
		pr_err("restored process has %d userfaultfds (refcr's tracking must be gone)", count_uffds());
	test_result();
	return 0;
}
