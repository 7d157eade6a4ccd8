/*
 * shared_mem00: MAP_SHARED anonymous memory between a parent and its child
 * stays shared; private memory stays private.
 *
 * The root maps a shared anonymous area and a private one, fills both and
 * forks.  Before the dump both write their own pages of the shared area and
 * see each other's writes.  After restore: the contents are checked in both
 * (shared: everyone's pages; private: each side's own writes), the root
 * writes a new page, the child (signalled after) sees it, writes another
 * and exits, and the root sees that one; a private page the root rewrote
 * after restore is still the old one in the child.
 */
#include "zdtmtst.h"

#include <unistd.h>
#include <sys/mman.h>

#define PS	4096
#define PAGES	16

/* pages: 0-3 root's initial, 4-7 the child's before dump,
 * 8 root's before dump, 9 the root after restore, 10 the child after. */
static char *shm, *priv;

static void chk_page(char *base, int pg, uint64_t seed, const char *what)
{
	if (datachk_at(base + pg * PS, PS, seed, pg * PS))
		pr_err("%s: page %d does not hold pattern %llu", what, pg,
		       (unsigned long long)seed);
}

static void put_page(char *base, int pg, uint64_t seed)
{
	datagen_at(base + pg * PS, PS, seed, pg * PS);
}

int main(int argc, char **argv)
{
	int i, sync[2];
	char c;
	pid_t pid;

	test_init(argc, argv);

	shm = mmap(NULL, PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	priv = mmap(NULL, PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED || priv == MAP_FAILED)
		fail("mmap");
	for (i = 0; i < 4; i++)
		put_page(shm, i, 1);
	datagen(priv, PAGES * PS, 2);
	if (pipe(sync))
		fail("pipe");

	pid = test_fork();
	if (pid == 0) {
		close(sync[0]);
		for (i = 4; i < 8; i++)
			put_page(shm, i, 3);
		put_page(priv, 0, 4);
		if (write(sync[1], "x", 1) != 1)
			fail("write");
		close(sync[1]);
		/* wait for the root's page 8 */
		while (datachk_at(shm + 8 * PS, PS, 5, 8 * PS))
			usleep(1000);
		test_child_ready();
		test_waitsig();

		for (i = 0; i < 4; i++)
			chk_page(shm, i, 1, "child, shared");
		for (i = 4; i < 8; i++)
			chk_page(shm, i, 3, "child, shared");
		chk_page(shm, 8, 5, "child, shared");
		chk_page(shm, 9, 6, "child, shared (written by the root after restore)");
		chk_page(priv, 0, 4, "child, private");
		chk_page(priv, 1, 2, "child, private (the root changed its copy)");
		for (i = 2; i < PAGES; i++)
			chk_page(priv, i, 2, "child, private");
		put_page(shm, 10, 7);
		test_child_exit();
	}
	close(sync[1]);
	if (read(sync[0], &c, 1) != 1)
		fail("the child did not write its pages");
	close(sync[0]);
	for (i = 4; i < 8; i++)
		chk_page(shm, i, 3, "root, before the dump");
	chk_page(priv, 0, 2, "root, private, before the dump");
	put_page(shm, 8, 5);

	test_daemon();
	test_waitsig();

	for (i = 0; i < 4; i++)
		chk_page(shm, i, 1, "root, shared");
	for (i = 4; i < 8; i++)
		chk_page(shm, i, 3, "root, shared");
	chk_page(shm, 8, 5, "root, shared");
	for (i = 0; i < PAGES; i++)
		chk_page(priv, i, 2, "root, private");
	put_page(shm, 9, 6);
	put_page(priv, 1, 8);
	test_children_check();
	chk_page(shm, 10, 7, "root, shared (written by the child after restore)");
	chk_page(priv, 1, 8, "root, private");
	test_result();
	return 0;
}
