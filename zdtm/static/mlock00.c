/*
 * mlock00: locked memory stays locked.
 *
 *  - an mlock()ed area (VmFlags lo, all pages resident), an
 *    mlock2(MLOCK_ONFAULT) area (lo lf; only the touched pages resident),
 *    an area partly unlocked again (munlock of its middle);
 *  - mlockall(MCL_FUTURE | MCL_ONFAULT) (mm->def_flags, visible in no file):
 *    an area mapped after restore is born locked on fault (lo lf), as one
 *    mapped before the dump is;
 *  - data of every area, VmFlags of every area (test_cmp_vmas).
 */
#include "zdtmtst.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PS 4096UL
#define NP 8
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif

static char *locked, *onfault, *holed, *future;
static struct test_vma before[64];
static int nbefore;
static unsigned long lo, hi;

static void flags_of(void *addr, struct test_vma *v)
{
	if (test_find_vma(addr, v) || test_collect_smaps(v->start, v->end, v, 1) != 1)
		fail("no area at %p", addr);
}

static int has(const char *flags, const char *f)
{
	char pad[200];

	snprintf(pad, sizeof(pad), " %s ", flags);
	char want[8];
	snprintf(want, sizeof(want), " %s ", f);
	return strstr(pad, want) != NULL;
}

static void expect(const char *when, const char *what, void *addr, int lock, int lf)
{
	struct test_vma v;

	flags_of(addr, &v);
	if (has(v.vmflags, "lo") != lock || has(v.vmflags, "lf") != lf)
		pr_err("%s: %s: VmFlags '%s', expected%s%s", when, what, v.vmflags,
		       lock ? " lo" : " no lo", lf ? " lf" : "");
}

static char *map(void)
{
	char *p = mmap(NULL, (NP + 1) * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fail("mmap");
	munmap(p + NP * PS, PS);	/* a gap: no merging with the next one */
	if ((unsigned long)p < lo)
		lo = (unsigned long)p;
	if ((unsigned long)p + NP * PS > hi)
		hi = (unsigned long)p + NP * PS;
	return p;
}

static void check_state(const char *when)
{
	struct test_vma now[64];
	unsigned char vec[NP];
	char *fresh;
	int n;

	expect(when, "mlock()ed area", locked, 1, 0);
	expect(when, "mlock2(MLOCK_ONFAULT) area", onfault, 1, 1);
	expect(when, "head of the partly unlocked area", holed, 1, 0);
	expect(when, "middle of the partly unlocked area", holed + 3 * PS, 0, 0);
	expect(when, "area mapped after mlockall(MCL_FUTURE|MCL_ONFAULT)", future, 1, 1);
	if (datachk(locked, NP * PS, 1) || datachk(onfault, 2 * PS, 2) || datachk(holed, NP * PS, 3))
		pr_err("%s: data of the locked areas", when);
	if (mincore(locked, NP * PS, vec))
		fail("mincore");
	for (n = 0; n < NP; n++)
		if (!(vec[n] & 1))
			pr_err("%s: page %d of the mlock()ed area is not resident", when, n);
	fresh = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fresh == MAP_FAILED)
		fail("mmap");
	expect(when, "area mapped now (MCL_FUTURE|MCL_ONFAULT)", fresh, 1, 1);
	munmap(fresh, PS);
	n = test_collect_smaps(lo, hi, now, ARRAY_SIZE(now));
	if (!nbefore) {
		memcpy(before, now, sizeof(now));
		nbefore = n;
	} else
		test_cmp_vmas(when, before, nbefore, now, n);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	lo = ~0UL;
	locked = map();
	onfault = map();
	holed = map();
	datagen(locked, NP * PS, 1);
	datagen(onfault, 2 * PS, 2);	/* the other pages stay untouched */
	datagen(holed, NP * PS, 3);
	if (mlock(locked, NP * PS) || mlock(holed, NP * PS) || munlock(holed + 2 * PS, 3 * PS))
		fail("mlock");
	if (syscall(SYS_mlock2, onfault, NP * PS, MLOCK_ONFAULT))
		fail("mlock2");
	if (mlockall(MCL_FUTURE | MCL_ONFAULT))
		fail("mlockall");
	future = map();
	test_check_around_cr(check_state);
	test_result();
	return 0;
}
