/*
 * brk00: the program break and the heap survive.
 *
 * The break is moved by an amount that is not a page multiple; after restore
 * the kernel's brk (syscall brk(0), not libc's cached sbrk(0)) must be the
 * same, the [heap] VMA the same, the data in it intact, and the heap must
 * still grow and shrink.  The mm layout fields of /proc/self/stat (code,
 * data, brk, arg and env boundaries) are compared too.
 */
#include "zdtmtst.h"

#include <malloc.h>
#include <unistd.h>
#include <sys/syscall.h>

#define PS	4096UL
#define GROW	(5 * PS + 123)
#define GROW2	(3 * PS + 77)

static unsigned long kbrk(void)
{
	return syscall(SYS_brk, 0);
}

/* proc(5) field numbers of /proc/self/stat that describe the mm layout. */
static const int stat_fields[] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };

static void read_stat(unsigned long long *vals)
{
	char *s, *p, *tok, *save;
	int field = 3, i;

	if (test_read_file("/proc/self/stat", &s) < 0)
		fail("read /proc/self/stat");
	p = strrchr(s, ')');
	if (!p)
		fail("bad /proc/self/stat");
	for (tok = strtok_r(p + 1, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save), field++)
		for (i = 0; i < (int)ARRAY_SIZE(stat_fields); i++)
			if (stat_fields[i] == field)
				vals[i] = strtoull(tok, NULL, 10);
	free(s);
}

int main(int argc, char **argv)
{
	unsigned long long st_before[ARRAY_SIZE(stat_fields)], st_after[ARRAY_SIZE(stat_fields)];
	struct test_vma heap_before, heap_after;
	unsigned long start, cur, b;
	char *area, *more;
	int i;

	test_init(argc, argv);

	/*
	 * Keep malloc from moving the break behind our back: give its main
	 * arena plenty of room now and never trim it.
	 */
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	mallopt(M_TOP_PAD, 1 << 20);
	free(malloc(64));
	if (test_find_vma((void *)kbrk() - 1, &heap_before))
		fail("warm-up");
	read_stat(st_before);

	start = kbrk();
	area = sbrk(GROW);
	if (area == (void *)-1)
		fail("sbrk");
	if ((unsigned long)area != start)
		fail("sbrk returned %p, break was %#lx", area, start);
	cur = kbrk();
	if (cur != start + GROW)
		fail("break %#lx, expected %#lx", cur, start + GROW);
	datagen(area, GROW, 77);

	if (test_find_vma(area + GROW - 1, &heap_before))
		fail("no VMA at the end of the heap");
	if (strcmp(heap_before.path, "[heap]"))
		fail("the break area is '%s', not [heap]", heap_before.path);
	read_stat(st_before);

	test_daemon();
	test_waitsig();

	b = kbrk();
	if (b != cur)
		pr_err("kernel brk is %#lx, was %#lx", b, cur);
	if ((unsigned long)sbrk(0) != cur)
		pr_err("libc sbrk(0) is %p, was %#lx", sbrk(0), cur);
	if (datachk(area, GROW, 77))
		pr_err("heap data mismatch");

	if (test_find_vma(area + GROW - 1, &heap_after))
		pr_err("no VMA at the end of the heap");
	else
		test_cmp_vmas("[heap]", &heap_before, 1, &heap_after, 1);

	read_stat(st_after);
	for (i = 0; i < (int)ARRAY_SIZE(stat_fields); i++)
		if (st_before[i] != st_after[i])
			pr_err("/proc/self/stat field %d: %#llx -> %#llx", stat_fields[i],
			       st_before[i], st_after[i]);

	/* It still grows... */
	more = sbrk(GROW2);
	if (more == (void *)-1)
		pr_err("sbrk(%lu) after restore failed", GROW2);
	else if ((unsigned long)more != cur || kbrk() != cur + GROW2)
		pr_err("sbrk after restore: got %p, brk %#lx; expected %#lx, %#lx",
		       more, kbrk(), cur, cur + GROW2);
	else {
		datagen(more, GROW2, 78);
		if (datachk(more, GROW2, 78) || datachk(area, GROW, 77))
			pr_err("heap data after growing");
		/* ...and shrinks. */
		if (sbrk(-(long)(GROW2 + GROW)) == (void *)-1 || kbrk() != start)
			pr_err("shrinking the heap back: brk %#lx, expected %#lx",
			       kbrk(), start);
	}

	test_result();
	return 0;
}
