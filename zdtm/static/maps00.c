/*
 * maps00: every kind of VMA keeps its place, protection and contents.
 *
 * All areas live inside one reserved range, separated by unmapped holes, so
 * the layout is exact and the before/after /proc/self/smaps comparison of the
 * range is meaningful:
 *   anon   private anonymous, RW, full of data
 *   fpriv  private mapping of a file in cwd, some pages CoW'd
 *   ashm   MAP_SHARED anonymous
 *   fshm   MAP_SHARED mapping of a file in cwd
 *   none   data written, then mprotect(PROT_NONE)
 *   ro     data written, then mprotect(PROT_READ)
 *   sparse 64 MiB anonymous with a few touched pages
 *   gdown  MAP_GROWSDOWN, grown by a fault below its start
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>

#define PS		4096UL
#define HOLE		PS
#define GD_HOLE		(8UL << 20)	/* room for the stack guard gap */

#define ANON_PAGES	16
#define FPRIV_PAGES	16
#define ASHM_PAGES	8
#define FSHM_PAGES	8
#define NONE_PAGES	4
#define RO_PAGES	4
#define SPARSE_PAGES	16384
#define GD_PAGES	4
#define GD_GROW		2

static const unsigned long sparse_touched[] = { 0, 1, 1000, 5000, 9999, SPARSE_PAGES - 1 };
static const unsigned long cow_pages[] = { 0, 3, 4, 15 };

static int is_cow(unsigned long pg)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cow_pages); i++)
		if (cow_pages[i] == pg)
			return 1;
	return 0;
}

static int thp_always(void)
{
	char *s;
	int r;

	if (test_read_file("/sys/kernel/mm/transparent_hugepage/enabled", &s) < 0)
		return 0;
	r = strstr(s, "[always]") != NULL;
	free(s);
	return r;
}

static int create_file(const char *name, size_t len, uint64_t seed)
{
	char *buf = malloc(len);
	int fd;

	if (!buf)
		fail("malloc");
	datagen(buf, len, seed);
	fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail("open %s", name);
	if (test_write_all(fd, buf, len) != (ssize_t)len)
		fail("write %s", name);
	free(buf);
	return fd;
}

static unsigned long count_resident(void *addr, unsigned long pages)
{
	unsigned char *vec = malloc(pages);
	unsigned long i, n = 0;

	if (!vec)
		fail("malloc");
	if (mincore(addr, pages * PS, vec))
		fail("mincore");
	for (i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	return n;
}

static void chk(const char *what, const void *p, size_t len, uint64_t seed, size_t off)
{
	if (datachk_at(p, len, seed, off))
		pr_err("%s: data mismatch (%zu bytes at %p, pattern offset %zu)",
		       what, len, p, off);
}

#define MAX_VMAS 64

int main(int argc, char **argv)
{
	struct test_vma before[MAX_VMAS], after[MAX_VMAS], v;
	int nbefore, nafter, fpriv_fd, fshm_fd, check_resident;
	unsigned long total, i, res_before = 0, res_after;
	char *base, *p, *anon, *fpriv, *ashm, *fshm, *none, *ro, *sparse, *gd;
	char *gd_low, *buf;

	test_init(argc, argv);

	total = ANON_PAGES + FPRIV_PAGES + ASHM_PAGES + FSHM_PAGES + NONE_PAGES +
		RO_PAGES + SPARSE_PAGES + GD_PAGES;
	total = total * PS + 8 * HOLE + GD_HOLE;
	base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		fail("reserve %lu bytes", total);

#define PLACE(var, pages, gap) do { var = p; p += (pages) * PS + (gap); } while (0)
	p = base + HOLE;
	PLACE(anon, ANON_PAGES, HOLE);
	PLACE(fpriv, FPRIV_PAGES, HOLE);
	PLACE(ashm, ASHM_PAGES, HOLE);
	PLACE(fshm, FSHM_PAGES, HOLE);
	PLACE(none, NONE_PAGES, HOLE);
	PLACE(ro, RO_PAGES, HOLE);
	PLACE(sparse, SPARSE_PAGES, GD_HOLE);
	PLACE(gd, GD_PAGES, HOLE);
	if (p != base + total)
		fail("layout arithmetic");
	/* Leave holes: unmap the whole reservation, map areas at fixed spots. */
	if (munmap(base, total))
		fail("munmap");

#define MAPFIX(addr, len, prot, flags, fd) do {					\
	if (mmap(addr, len, prot, (flags) | MAP_FIXED, fd, 0) != (void *)(addr))	\
		fail("mmap " #addr);						\
} while (0)

	MAPFIX(anon, ANON_PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	datagen(anon, ANON_PAGES * PS, 1);

	fpriv_fd = create_file("maps00.priv", FPRIV_PAGES * PS, 2);
	MAPFIX(fpriv, FPRIV_PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, fpriv_fd);
	close(fpriv_fd);
	for (i = 0; i < ARRAY_SIZE(cow_pages); i++)
		datagen_at(fpriv + cow_pages[i] * PS, PS, 3, cow_pages[i] * PS);
	/* Read the others so they are in the page tables (not CoW'd). */
	for (i = 0; i < FPRIV_PAGES; i++)
		if (!is_cow(i))
			chk("fpriv (setup)", fpriv + i * PS, PS, 2, i * PS);

	MAPFIX(ashm, ASHM_PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
	datagen(ashm, ASHM_PAGES * PS, 4);

	fshm_fd = create_file("maps00.shared", FSHM_PAGES * PS, 11);
	MAPFIX(fshm, FSHM_PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fshm_fd);
	datagen(fshm, FSHM_PAGES * PS, 5);	/* overwrite through the mapping */

	MAPFIX(none, NONE_PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	datagen(none, NONE_PAGES * PS, 6);
	if (mprotect(none, NONE_PAGES * PS, PROT_NONE))
		fail("mprotect none");

	MAPFIX(ro, RO_PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	datagen(ro, RO_PAGES * PS, 7);
	if (mprotect(ro, RO_PAGES * PS, PROT_READ))
		fail("mprotect ro");

	MAPFIX(sparse, SPARSE_PAGES * PS, PROT_READ | PROT_WRITE,
	       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1);
	for (i = 0; i < ARRAY_SIZE(sparse_touched); i++)
		datagen(sparse + sparse_touched[i] * PS, PS, 100 + i);
	check_resident = !thp_always();
	if (check_resident) {
		res_before = count_resident(sparse, SPARSE_PAGES);
		if (res_before != ARRAY_SIZE(sparse_touched))
			fail("sparse: %lu resident pages, expected %zu", res_before,
			     ARRAY_SIZE(sparse_touched));
	}

	MAPFIX(gd, GD_PAGES * PS, PROT_READ | PROT_WRITE,
	       MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1);
	datagen(gd, GD_PAGES * PS, 8);
	/* Grow it: touch pages below its start, top down. */
	for (i = 1; i <= GD_GROW; i++)
		datagen(gd - i * PS, PS, 9 + i);
	gd_low = gd - GD_GROW * PS;
	if (test_find_vma(gd_low, &v) || v.start != (unsigned long)gd_low ||
	    v.end != (unsigned long)gd + GD_PAGES * PS)
		fail("growsdown area did not grow as expected");

	nbefore = test_collect_smaps((unsigned long)base, (unsigned long)base + total,
				     before, MAX_VMAS);
	if (nbefore != 8)
		fail("expected 8 VMAs in the test range, found %d", nbefore);

	test_daemon();
	test_waitsig();

	nafter = test_collect_smaps((unsigned long)base, (unsigned long)base + total,
				    after, MAX_VMAS);
	test_cmp_vmas("test range", before, nbefore, after, nafter);

	chk("anon", anon, ANON_PAGES * PS, 1, 0);

	for (i = 0; i < FPRIV_PAGES; i++)
		chk(is_cow(i) ? "fpriv cow page" : "fpriv file page",
		    fpriv + i * PS, PS, is_cow(i) ? 3 : 2, i * PS);
	/* Still private: a new write must not reach the file. */
	fpriv[PS + 7] ^= 0xff;
	buf = malloc(FPRIV_PAGES * PS);
	fpriv_fd = open("maps00.priv", O_RDONLY);
	if (!buf || fpriv_fd < 0 ||
	    pread(fpriv_fd, buf, FPRIV_PAGES * PS, 0) != (ssize_t)(FPRIV_PAGES * PS))
		fail("read back maps00.priv");
	chk("maps00.priv file", buf, FPRIV_PAGES * PS, 2, 0);
	close(fpriv_fd);

	chk("ashm", ashm, ASHM_PAGES * PS, 4, 0);

	chk("fshm", fshm, FSHM_PAGES * PS, 5, 0);
	if (pread(fshm_fd, buf, FSHM_PAGES * PS, 0) != (ssize_t)(FSHM_PAGES * PS))
		fail("pread maps00.shared");
	chk("maps00.shared file", buf, FSHM_PAGES * PS, 5, 0);
	/* Still shared with the file. */
	datagen(fshm, PS, 12);
	if (pread(fshm_fd, buf, PS, 0) != (ssize_t)PS)
		fail("pread maps00.shared");
	chk("maps00.shared file after a new write", buf, PS, 12, 0);

	if (mprotect(none, NONE_PAGES * PS, PROT_READ))
		fail("mprotect none -> read");
	chk("none", none, NONE_PAGES * PS, 6, 0);

	chk("ro", ro, RO_PAGES * PS, 7, 0);

	if (check_resident) {
		res_after = count_resident(sparse, SPARSE_PAGES);
		if (res_after != res_before)
			pr_err("sparse: %lu resident pages before, %lu after",
			       res_before, res_after);
	}
	for (i = 0; i < ARRAY_SIZE(sparse_touched); i++)
		chk("sparse touched page", sparse + sparse_touched[i] * PS, PS, 100 + i, 0);
	for (i = 0; i < SPARSE_PAGES; i++) {
		size_t k, j;

		for (k = 0; k < ARRAY_SIZE(sparse_touched); k++)
			if (sparse_touched[k] == i)
				break;
		if (k < ARRAY_SIZE(sparse_touched))
			continue;
		for (j = 0; j < PS; j += 8)
			if (*(uint64_t *)(sparse + i * PS + j)) {
				pr_err("sparse: untouched page %lu is not zero", i);
				break;
			}
	}

	chk("growsdown", gd, GD_PAGES * PS, 8, 0);
	for (i = 1; i <= GD_GROW; i++)
		chk("growsdown grown page", gd - i * PS, PS, 9 + i, 0);
	/* It still grows down. */
	datagen(gd_low - PS, PS, 42);
	if (test_find_vma(gd_low - PS, &v) || v.start != (unsigned long)gd_low - PS)
		pr_err("growsdown area does not grow any more");
	else
		chk("growsdown new page", gd_low - PS, PS, 42, 0);

	test_result();
	return 0;
}
