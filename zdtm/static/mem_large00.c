/*
 * mem_large00: page data of large areas across the dump's 8 MiB batches.
 *
 *  - a dense 20 MiB area (batches split it, and a batch spans its end and
 *    the next area);
 *  - a sparse 64 MiB area with every 7th page written and a 9 MiB run in
 *    its middle, not page-aligned to any batch;
 *  - a 9 MiB PROT_NONE area with data (read through /proc/PID/mem);
 *  - a private file mapping of 12 MiB with every 3rd page written (CoW);
 *  - untouched pages read as zeros.
 * Every page is checked against its own pattern (seed = area, offset).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PS 4096UL
#define MB (1UL << 20)

struct area {
	const char *name;
	unsigned long size;
	int step;		/* every step-th page written; 1: all */
	unsigned long run_at, run_len;	/* plus a dense run */
	int prot, file;
	char *addr;
};

static struct area areas[] = {
	{ "dense", 20 * MB, 1, 0, 0, PROT_READ | PROT_WRITE, 0 },
	{ "sparse", 64 * MB, 7, 23 * MB + 3 * PS, 9 * MB, PROT_READ | PROT_WRITE, 0 },
	{ "none", 9 * MB, 2, 0, 0, PROT_NONE, 0 },
	{ "file", 12 * MB, 3, 0, 0, PROT_READ | PROT_WRITE, 1 },
};

static int written(struct area *a, unsigned long off)
{
	return (off / PS) % a->step == 0 || (off >= a->run_at && off < a->run_at + a->run_len);
}

static void check_state(const char *when)
{
	static char zero[PS], file[PS];
	unsigned long i, off, bad = 0;

	memset(file, 'f', PS);
	for (i = 0; i < ARRAY_SIZE(areas); i++) {
		struct area *a = &areas[i];

		if (a->prot == PROT_NONE && mprotect(a->addr, a->size, PROT_READ))
			fail("mprotect");
		for (off = 0; off < a->size; off += PS) {
			const char *p = a->addr + off;
			int ok = written(a, off) ? !datachk(p, PS, i * 100000 + off / PS)
				 : !memcmp(p, a->file ? file : zero, PS);

			if (!ok && bad++ < 5)
				pr_err("%s: area %s: page at offset %#lx (%s) is wrong", when, a->name, off,
				       written(a, off) ? "written" : "untouched");
		}
		if (a->prot == PROT_NONE && mprotect(a->addr, a->size, PROT_NONE))
			fail("mprotect");
	}
	if (bad)
		pr_err("%s: %lu bad pages", when, bad);
}

int main(int argc, char **argv)
{
	static char page[PS];
	unsigned long i, off;
	int fd;

	test_init(argc, argv);
	memset(page, 'f', PS);
	fd = open("backing", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail("open");
	for (off = 0; off < 12 * MB; off += PS)
		if (write(fd, page, PS) != PS)
			fail("write");
	for (i = 0; i < ARRAY_SIZE(areas); i++) {
		struct area *a = &areas[i];

		a->addr = mmap(NULL, a->size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | (a->file ? 0 : MAP_ANONYMOUS), a->file ? fd : -1, 0);
		if (a->addr == MAP_FAILED)
			fail("mmap %s", a->name);
		for (off = 0; off < a->size; off += PS)
			if (written(a, off))
				datagen(a->addr + off, PS, i * 100000 + off / PS);
		if (a->prot != (PROT_READ | PROT_WRITE) && mprotect(a->addr, a->size, a->prot))
			fail("mprotect");
	}
	close(fd);
	test_check_around_cr(check_state);
	test_result();
	return 0;
}
