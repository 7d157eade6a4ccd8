/*
 * mprotect00: areas with various protections, some split by mprotect() of
 * their middle, keep their bounds, protections and data.  Protections are
 * checked both in /proc/self/smaps and by probing each page for read and
 * write faults.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <setjmp.h>
#include <unistd.h>
#include <sys/mman.h>

#define PS 4096UL

struct seg {
	unsigned long first, npages;	/* pages inside the area */
	int prot;
};

struct area {
	const char *name;
	unsigned long npages;
	int file;			/* private mapping of a file */
	struct seg segs[4];
	char *addr;
};

/* Protections applied after the data is written, segment by segment. */
static struct area areas[] = {
	{ "rw-r-rw", 8, 0, {
		{ 0, 3, PROT_READ | PROT_WRITE },
		{ 3, 2, PROT_READ },
		{ 5, 3, PROT_READ | PROT_WRITE } } },
	{ "none-rwx-rx", 6, 0, {
		{ 0, 1, PROT_NONE },
		{ 1, 4, PROT_READ | PROT_WRITE | PROT_EXEC },
		{ 5, 1, PROT_READ | PROT_EXEC } } },
	{ "w-only", 3, 0, {
		{ 0, 3, PROT_WRITE } } },
	{ "r-x", 2, 0, {
		{ 0, 2, PROT_READ | PROT_EXEC } } },
	{ "file r-rw-r", 6, 1, {
		{ 0, 2, PROT_READ },
		{ 2, 2, PROT_READ | PROT_WRITE },
		{ 4, 2, PROT_READ } } },
	{ "file none-r", 4, 1, {
		{ 0, 1, PROT_NONE },
		{ 1, 3, PROT_READ } } },
};

static sigjmp_buf probe_env;
static volatile sig_atomic_t probing;

static void segv(int sig)
{
	if (!probing) {
		signal(sig, SIG_DFL);
		return;
	}
	siglongjmp(probe_env, 1);
}

/* 0 if the access works, 1 if it faults. */
static int probe(volatile char *p, int write)
{
	int faulted = 0;

	probing = 1;
	if (sigsetjmp(probe_env, 1))
		faulted = 1;
	else if (write)
		*p = *p;	/* write the same value back (after a read) */
	else
		(void)*p;
	probing = 0;
	return faulted;
}

/* Writing without reading: for write-only pages. */
static int probe_write_only(volatile char *p, char val)
{
	int faulted = 0;

	probing = 1;
	if (sigsetjmp(probe_env, 1))
		faulted = 1;
	else
		*p = val;
	probing = 0;
	return faulted;
}

static uint64_t seed_of(int a, unsigned long pg)
{
	return 1000 * (a + 1) + pg;
}

static void check_area(int a)
{
	struct area *ar = &areas[a];
	int s;

	for (s = 0; s < 4 && ar->segs[s].npages; s++) {
		struct seg *sg = &ar->segs[s];
		unsigned long pg;

		for (pg = sg->first; pg < sg->first + sg->npages; pg++) {
			char *p = ar->addr + pg * PS;
			int rd = 0, wr;

			if (sg->prot & (PROT_READ | PROT_EXEC)) {
				rd = 1;
			} else if (sg->prot & PROT_WRITE) {
				/* x86: write implies read. */
				rd = 1;
			}
			if (probe(p, 0) != !rd)
				pr_err("%s page %lu: read %s", ar->name, pg,
				       rd ? "faults" : "does not fault");
			wr = !!(sg->prot & PROT_WRITE);
			if (wr) {
				if (probe_write_only(p + PS - 1, p[PS - 1]))
					pr_err("%s page %lu: write faults", ar->name, pg);
			} else if (rd && !probe(p, 1)) {
				pr_err("%s page %lu: write does not fault", ar->name, pg);
			}

			if (!(sg->prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) &&
			    mprotect(p, PS, PROT_READ))
				fail("mprotect");
			if (datachk(p, PS, seed_of(a, pg)))
				pr_err("%s page %lu: data mismatch", ar->name, pg);
		}
	}
}

#define MAX_VMAS 64

int main(int argc, char **argv)
{
	struct test_vma before[MAX_VMAS], after[MAX_VMAS];
	unsigned long total = PS, off;
	int nbefore, nafter, a, s, fd;
	struct sigaction sa = {};
	char *base;

	test_init(argc, argv);

	sa.sa_handler = segv;
	sa.sa_flags = SA_NODEFER;
	if (sigaction(SIGSEGV, &sa, NULL))
		fail("sigaction");

	for (a = 0; a < (int)ARRAY_SIZE(areas); a++)
		total += (areas[a].npages + 1) * PS;
	base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED || munmap(base, total))
		fail("reserve");

	off = PS;
	for (a = 0; a < (int)ARRAY_SIZE(areas); a++) {
		struct area *ar = &areas[a];
		size_t len = ar->npages * PS;
		unsigned long pg;
		char *p;

		ar->addr = base + off;
		off += len + PS;
		if (ar->file) {
			char name[64], *buf = malloc(len);

			snprintf(name, sizeof(name), "mprotect00.%d", a);
			fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 || !buf)
				fail("open %s", name);
			for (pg = 0; pg < ar->npages; pg++)
				datagen(buf + pg * PS, PS, seed_of(a, pg));
			if (test_write_all(fd, buf, len) != (ssize_t)len)
				fail("write %s", name);
			free(buf);
			p = mmap(ar->addr, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
			close(fd);
		} else {
			p = mmap(ar->addr, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		}
		if (p != ar->addr)
			fail("mmap %s", ar->name);
		if (!ar->file)
			for (pg = 0; pg < ar->npages; pg++)
				datagen(p + pg * PS, PS, seed_of(a, pg));

		for (s = 0; s < 4 && ar->segs[s].npages; s++) {
			struct seg *sg = &ar->segs[s];

			if (mprotect(p + sg->first * PS, sg->npages * PS, sg->prot))
				fail("mprotect %s seg %d", ar->name, s);
			/* CoW the writable pages of file mappings. */
			if (ar->file && (sg->prot & PROT_WRITE))
				for (pg = sg->first; pg < sg->first + sg->npages; pg++) {
					volatile char *v = p + pg * PS;

					*v = *v;
				}
		}
	}

	nbefore = test_collect_smaps((unsigned long)base, (unsigned long)base + total,
				     before, MAX_VMAS);
	if (nbefore != 3 + 3 + 1 + 1 + 3 + 2)
		fail("unexpected number of VMAs: %d", nbefore);

	test_daemon();
	test_waitsig();

	nafter = test_collect_smaps((unsigned long)base, (unsigned long)base + total,
				    after, MAX_VMAS);
	test_cmp_vmas("test areas", before, nbefore, after, nafter);
	for (a = 0; a < (int)ARRAY_SIZE(areas); a++)
		check_area(a);

	test_result();
	return 0;
}
