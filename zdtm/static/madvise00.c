/*
 * madvise00: per-area VM flags come back exactly, and the data with them.
 *
 *  - one area per madvise() advice: SEQUENTIAL (sr), RANDOM (rr), DONTFORK
 *    (dc), DONTDUMP (dd), HUGEPAGE (hg), NOHUGEPAGE (nh), MERGEABLE (mg),
 *    WIPEONFORK (wf), and a MAP_GROWSDOWN area (gd);
 *  - guard regions (MADV_GUARD_INSTALL, kernel 6.13+): two pages of an area
 *    are guards; after restore they still fault (SIGSEGV on read), the
 *    pages around them hold their data, and pagemap still shows them as
 *    guard markers (bit 58), not as pages.  (Their pages are never read at
 *    dump: reading a guard faults.)
 *  - VmFlags of every area in smaps are compared before and after
 *    (test_cmp_vmas: everything but sd/ac/nr).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#define PS 4096UL
#define NP 8
#define PM_GUARD (1ULL << 58)

static const struct { int advice; const char *name, *flag; } advs[] = {
	{ MADV_SEQUENTIAL, "SEQUENTIAL", "sr" }, { MADV_RANDOM, "RANDOM", "rr" },
	{ MADV_DONTFORK, "DONTFORK", "dc" }, { MADV_DONTDUMP, "DONTDUMP", "dd" },
	{ MADV_HUGEPAGE, "HUGEPAGE", "hg" }, { MADV_NOHUGEPAGE, "NOHUGEPAGE", "nh" },
	{ MADV_MERGEABLE, "MERGEABLE", "mg" }, { MADV_WIPEONFORK, "WIPEONFORK", "wf" },
};
#define NA ARRAY_SIZE(advs)

static char *area[NA + 2];	/* the advised ones, the growsdown one, the guarded one */
static struct test_vma before[64];
static int nbefore;
static unsigned long lo, hi;
static sigjmp_buf env;

static void segv(int sig)
{
	(void)sig;
	siglongjmp(env, 1);
}

static int faults(volatile char *p)
{
	struct sigaction sa = { .sa_handler = segv }, old;
	int f = 0;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(env, 1))
		f = 1;
	else
		(void)*p;
	sigaction(SIGSEGV, &old, NULL);
	return f;
}

static int has_flag(const char *flags, const char *f)
{
	size_t n = strlen(f);
	const char *p;

	for (p = flags; (p = strstr(p, f)); p += n)
		if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

static uint64_t pagemap(void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0 || pread(fd, &e, 8, (unsigned long)addr / PS * 8) != 8)
		fail("pagemap");
	close(fd);
	return e;
}

static void check_state(const char *when)
{
	struct test_vma now[64], v;
	int n, i;
	char *g = area[NA + 1];

	for (i = 0; i < (int)NA; i++) {
		if (test_find_vma(area[i], &v) || test_collect_smaps(v.start, v.end, &v, 1) != 1)
			pr_err("%s: no area for %s", when, advs[i].name);
		else if (!has_flag(v.vmflags, advs[i].flag))
			pr_err("%s: area of MADV_%s has no '%s' in VmFlags: %s", when, advs[i].name,
			       advs[i].flag, v.vmflags);
		if (datachk(area[i], NP * PS, i + 1))
			pr_err("%s: data of the MADV_%s area", when, advs[i].name);
	}
	if (test_collect_smaps((unsigned long)area[NA], (unsigned long)area[NA] + PS, &v, 1) != 1 ||
	    !has_flag(v.vmflags, "gd"))
		pr_err("%s: the MAP_GROWSDOWN area has no 'gd' (%s)", when, v.vmflags);
	for (i = 0; i < NP; i++) {
		int guard = i == 2 || i == 5;

		if (faults(g + i * PS) != guard)
			pr_err("%s: page %d of the guarded area %s", when, i, guard ? "does not fault" : "faults");
		if (guard != !!(pagemap(g + i * PS) & PM_GUARD))
			pr_err("%s: pagemap of page %d of the guarded area: %#llx", when, i,
			       (unsigned long long)pagemap(g + i * PS));
		if (!guard && datachk(g + i * PS, PS, 100 + i))
			pr_err("%s: data of page %d of the guarded area", when, i);
	}
	n = test_collect_smaps(lo, hi, now, ARRAY_SIZE(now));
	if (!nbefore) {
		memcpy(before, now, sizeof(now));
		nbefore = n;
	} else
		test_cmp_vmas(when, before, nbefore, now, n);
}

int main(int argc, char **argv)
{
	int i;

	test_init(argc, argv);
	lo = ~0UL;
	for (i = 0; i < (int)NA + 2; i++) {
		int flags = MAP_PRIVATE | MAP_ANONYMOUS | (i == (int)NA ? MAP_GROWSDOWN : 0);

		/* a gap page between areas keeps the kernel from merging them */
		area[i] = mmap(NULL, (NP + 1) * PS, PROT_READ | PROT_WRITE, flags, -1, 0);
		if (area[i] == MAP_FAILED)
			fail("mmap");
		munmap(area[i] + NP * PS, PS);
		if ((unsigned long)area[i] < lo)
			lo = (unsigned long)area[i];
		if ((unsigned long)area[i] + NP * PS > hi)
			hi = (unsigned long)area[i] + NP * PS;
	}
	for (i = 0; i < (int)NA; i++) {
		datagen(area[i], NP * PS, i + 1);
		if (madvise(area[i], NP * PS, advs[i].advice))
			fail("madvise(MADV_%s)", advs[i].name);
	}
	for (i = 0; i < NP; i++)
		datagen(area[NA + 1] + i * PS, PS, 100 + i);
	if (madvise(area[NA + 1] + 2 * PS, PS, MADV_GUARD_INSTALL) ||
	    madvise(area[NA + 1] + 5 * PS, PS, MADV_GUARD_INSTALL))
		fail("madvise(MADV_GUARD_INSTALL)");
	test_check_around_cr(check_state);
	test_result();
	return 0;
}
