/*
 * vdso_unmap00: a process that unmapped its [vdso] and [vvar]/[vvar_vclock]
 * areas (as some runtimes and sandboxes do) comes back without them (the
 * restore used to fail: "the dumped process had no [vvar]"), and its
 * time calls still work through the raw syscall.
 */
#include "zdtmtst.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int specials(void)
{
	char *maps;
	int n = 0;
	const char *p;

	if (test_read_file("/proc/self/maps", &maps) < 0)
		fail("maps");
	for (p = maps; (p = strstr(p, "[v")); p++)
		if (!strncmp(p, "[vdso]", 6) || !strncmp(p, "[vvar", 5))
			n++;
	free(maps);
	return n;
}

static void check_state(const char *when)
{
	struct timespec ts;

	if (specials())
		pr_err("%s: a [vdso] or [vvar] area is mapped", when);
	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts))
		pr_err("%s: clock_gettime", when);
}

int main(int argc, char **argv)
{
	struct test_vma v[64];
	int n, i;

	test_init(argc, argv);
	n = test_collect_vmas(0, ~0UL, v, ARRAY_SIZE(v));
	for (i = 0; i < n; i++)
		if (!strcmp(v[i].path, "[vdso]") || !strncmp(v[i].path, "[vvar", 5))
			if (munmap((void *)v[i].start, v[i].end - v[i].start))
				fail("munmap %s", v[i].path);
	test_check_around_cr(check_state);
	test_result();
	return 0;
}
