/*
 * vdso00: the vDSO still works and is where it was.
 *
 *  - getauxval(AT_SYSINFO_EHDR) is still the start of [vdso] in
 *    /proc/self/maps; [vdso], [vvar] (and [vvar_vclock]) VMAs are unchanged; the vDSO image
 *    has the same checksum;
 *  - clock_gettime() through the vDSO, for several clocks, agrees with the
 *    raw syscall (vdso <= syscall <= vdso for fine clocks, within a small
 *    tolerance for coarse ones); gettimeofday() and time() likewise;
 *  - time as seen through the vDSO advances across a sleep.
 */
#include "zdtmtst.h"

#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOCK_TAI
#define CLOCK_TAI 11
#endif

static const struct {
	clockid_t id;
	const char *name;
	int coarse;
} clocks[] = {
	{ CLOCK_REALTIME, "REALTIME", 0 },
	{ CLOCK_MONOTONIC, "MONOTONIC", 0 },
	{ CLOCK_BOOTTIME, "BOOTTIME", 0 },
	{ CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW", 0 },
	{ CLOCK_TAI, "TAI", 0 },
	{ CLOCK_REALTIME_COARSE, "REALTIME_COARSE", 1 },
	{ CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE", 1 },
};

#define NSEC 1000000000LL
#define COARSE_TOL (50 * 1000000LL)	/* 50 ms: a few ticks at any HZ */

static long long ns(const struct timespec *t)
{
	return t->tv_sec * NSEC + t->tv_nsec;
}

static int check_clocks(const char *when)
{
	int errs = 0;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(clocks); i++) {
		struct timespec a, s, b;
		int tries;

		for (tries = 0; tries < 5; tries++) {
			if (clock_gettime(clocks[i].id, &a) ||
			    syscall(SYS_clock_gettime, clocks[i].id, &s) ||
			    clock_gettime(clocks[i].id, &b))
				fail("clock_gettime(%s)", clocks[i].name);
			if (clocks[i].coarse) {
				if (llabs(ns(&s) - ns(&a)) <= COARSE_TOL &&
				    llabs(ns(&b) - ns(&s)) <= COARSE_TOL && ns(&a) <= ns(&b))
					break;
			} else if (ns(&a) <= ns(&s) && ns(&s) <= ns(&b) &&
				   ns(&b) - ns(&a) < NSEC / 10) {
				break;
			}
		}
		if (tries == 5) {
			pr_err("%s: CLOCK_%s: vdso %lld.%09ld, syscall %lld.%09ld, vdso %lld.%09ld",
			       when, clocks[i].name, (long long)a.tv_sec, a.tv_nsec,
			       (long long)s.tv_sec, s.tv_nsec, (long long)b.tv_sec, b.tv_nsec);
			errs++;
		}
	}

	{
		struct timeval a, s, b;
		long long ua, us, ub;
		time_t t1, t2, t3;

		gettimeofday(&a, NULL);
		syscall(SYS_gettimeofday, &s, NULL);
		gettimeofday(&b, NULL);
		ua = a.tv_sec * 1000000LL + a.tv_usec;
		us = s.tv_sec * 1000000LL + s.tv_usec;
		ub = b.tv_sec * 1000000LL + b.tv_usec;
		if (!(ua <= us && us <= ub && ub - ua < 100000)) {
			pr_err("%s: gettimeofday: vdso %lld, syscall %lld, vdso %lld", when,
			       ua, us, ub);
			errs++;
		}
		t1 = time(NULL);
		t2 = syscall(SYS_time, NULL);
		t3 = time(NULL);
		if (t2 < t1 - 1 || t2 > t3 + 1) {
			pr_err("%s: time: vdso %lld, syscall %lld, vdso %lld", when,
			       (long long)t1, (long long)t2, (long long)t3);
			errs++;
		}
	}
	return errs;
}

static int find_special(const char *name, struct test_vma *out)
{
	struct test_vma all[256];
	int n, i;

	n = test_collect_vmas(0, ~0UL, all, ARRAY_SIZE(all));
	if (n < 0)
		fail("reading /proc/self/maps");
	for (i = 0; i < n; i++)
		if (!strcmp(all[i].path, name)) {
			*out = all[i];
			return 0;
		}
	return -1;
}

int main(int argc, char **argv)
{
	static const char *const specials[] = { "[vvar]", "[vvar_vclock]" };
	struct test_vma vdso_b, vdso_a, sp_b[ARRAY_SIZE(specials)], sp_a;
	int have[ARRAY_SIZE(specials)];
	unsigned long ehdr, ehdr2;
	struct timespec t1, t2, d = { 0, 20 * 1000000 };
	size_t i;
	uint32_t crc_b, crc_a;

	test_init(argc, argv);

	ehdr = getauxval(AT_SYSINFO_EHDR);
	if (!ehdr)
		fail("no AT_SYSINFO_EHDR");
	if (find_special("[vdso]", &vdso_b))
		fail("no [vdso] in /proc/self/maps");
	if (vdso_b.start != ehdr)
		fail("[vdso] at %#lx, AT_SYSINFO_EHDR %#lx", vdso_b.start, ehdr);
	for (i = 0; i < ARRAY_SIZE(specials); i++)
		have[i] = !find_special(specials[i], &sp_b[i]);
	crc_b = crc32(0, (void *)vdso_b.start, vdso_b.end - vdso_b.start);
	if (check_clocks("at start"))
		fail("the vDSO disagrees with syscalls at start");

	test_daemon();
	test_waitsig();

	ehdr2 = getauxval(AT_SYSINFO_EHDR);
	if (ehdr2 != ehdr)
		pr_err("AT_SYSINFO_EHDR changed: %#lx -> %#lx", ehdr, ehdr2);
	if (find_special("[vdso]", &vdso_a)) {
		pr_err("no [vdso] in /proc/self/maps after restore");
	} else {
		test_cmp_vmas("[vdso]", &vdso_b, 1, &vdso_a, 1);
		if (vdso_a.start != ehdr)
			pr_err("[vdso] at %#lx, AT_SYSINFO_EHDR %#lx", vdso_a.start, ehdr);
		crc_a = crc32(0, (void *)vdso_a.start, vdso_a.end - vdso_a.start);
		if (crc_a != crc_b)
			pr_err("vDSO image checksum %#x -> %#x", crc_b, crc_a);
	}
	for (i = 0; i < ARRAY_SIZE(specials); i++) {
		if (!have[i])
			continue;
		if (find_special(specials[i], &sp_a))
			pr_err("no %s in /proc/self/maps after restore", specials[i]);
		else
			test_cmp_vmas(specials[i], &sp_b[i], 1, &sp_a, 1);
	}

	check_clocks("after restore");

	clock_gettime(CLOCK_MONOTONIC, &t1);
	nanosleep(&d, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	if (ns(&t2) - ns(&t1) < ns(&d))
		pr_err("vDSO CLOCK_MONOTONIC advanced %lld ns over a %lld ns sleep",
		       ns(&t2) - ns(&t1), ns(&d));

	test_result();
	return 0;
}
