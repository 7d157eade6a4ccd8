/*
 * mmap_file_private00: a private file mapping keeps its semantics.
 *
 * Pages written before the dump (CoW'd) keep the written data; pages only
 * read still match the file; pages never touched still follow the file (a
 * pwrite() to the file after restore shows in them); and the mapping is
 * still private: writes to it never reach the file.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>

#define PS	4096UL
#define PAGES	16

enum { UNTOUCHED, READ, COW };
static const int kind[PAGES] = {
	COW, READ, UNTOUCHED, COW, COW, READ, READ, UNTOUCHED,
	UNTOUCHED, COW, READ, UNTOUCHED, UNTOUCHED, READ, COW, UNTOUCHED,
};

int main(int argc, char **argv)
{
	struct test_vma before, after;
	char *map, *buf;
	volatile char sink;
	int fd, i;

	test_init(argc, argv);

	buf = malloc(PAGES * PS);
	fd = open("mmap_file_private00.file", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || !buf)
		fail("open");
	datagen(buf, PAGES * PS, 1);
	if (test_write_all(fd, buf, PAGES * PS) != (ssize_t)(PAGES * PS))
		fail("write");

	map = mmap(NULL, PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		fail("mmap");
	for (i = 0; i < PAGES; i++) {
		if (kind[i] == COW)
			datagen_at(map + i * PS, PS, 2, i * PS);
		else if (kind[i] == READ)
			sink = map[i * PS + 100];
	}
	(void)sink;
	if (test_find_vma(map, &before))
		fail("no VMA");

	test_daemon();
	test_waitsig();

	if (test_find_vma(map, &after))
		fail("no VMA after restore");
	test_cmp_vmas("mapping", &before, 1, &after, 1);
	if (!strchr(after.perms, 'p'))
		pr_err("the mapping is not private any more: %s", after.perms);

	for (i = 0; i < PAGES; i++)
		if (datachk_at(map + i * PS, PS, kind[i] == COW ? 2 : 1, i * PS))
			pr_err("page %d (%s): data mismatch", i,
			       kind[i] == COW ? "CoW'd" : kind[i] == READ ? "read" : "untouched");

	/* The file is as written at the start. */
	if (pread(fd, buf, PAGES * PS, 0) != (ssize_t)(PAGES * PS))
		fail("pread");
	if (datachk(buf, PAGES * PS, 1))
		pr_err("the file changed: private writes reached it");

	/* Untouched pages still come from the file's page cache. */
	datagen(buf, PS, 3);
	if (pwrite(fd, buf, PS, 7 * PS) != (ssize_t)PS)
		fail("pwrite");
	if (datachk(map + 7 * PS, PS, 3))
		pr_err("untouched page 7 does not follow the file");
	/* CoW'd pages do not. */
	if (pwrite(fd, buf, PS, 3 * PS) != (ssize_t)PS)
		fail("pwrite");
	if (datachk_at(map + 3 * PS, PS, 2, 3 * PS))
		pr_err("CoW'd page 3 changed with the file");

	/* New private writes do not reach the file. */
	datagen(map + 2 * PS, PS, 4);
	datagen(map + 0 * PS, PS, 4);
	if (pread(fd, buf, PS, 2 * PS) != (ssize_t)PS || datachk_at(buf, PS, 1, 2 * PS))
		pr_err("a write to the mapping after restore reached the file (page 2)");
	if (pread(fd, buf, PS, 0) != (ssize_t)PS || datachk_at(buf, PS, 1, 0))
		pr_err("a write to the mapping after restore reached the file (page 0)");

	test_result();
	return 0;
}
