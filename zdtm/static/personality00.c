/*
 * personality00: the execution domain flags survive, with their effects:
 * UNAME26 makes uname() report a 2.6.x release, READ_IMPLIES_EXEC makes a
 * PROT_READ mapping executable, ADDR_NO_RANDOMIZE is reported.
 */
#include "zdtmtst.h"

#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/utsname.h>

#define PERS (PER_LINUX | ADDR_NO_RANDOMIZE | UNAME26 | READ_IMPLIES_EXEC)

int main(int argc, char **argv)
{
	struct test_vma v;
	struct utsname u;
	int p;
	void *m;

	test_init(argc, argv);

	if (personality(PERS) < 0)
		fail("personality");
	if (personality(0xffffffff) != PERS)
		fail("personality not set: %#x", personality(0xffffffff));

	test_daemon();
	test_waitsig();

	p = personality(0xffffffff);
	if (p != PERS)
		pr_err("personality %#x, expected %#x", p, PERS);

	if (uname(&u))
		fail("uname");
	if (strncmp(u.release, "2.6.", 4))
		pr_err("UNAME26: uname release is '%s'", u.release);

	m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		fail("mmap");
	if (test_find_vma(m, &v))
		fail("no VMA for the new mapping");
	if (strcmp(v.perms, "r-xp"))
		pr_err("READ_IMPLIES_EXEC: a PROT_READ mapping is %s", v.perms);

	test_result();
	return 0;
}
