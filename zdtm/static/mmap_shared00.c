/*
 * mmap_shared00: MAP_SHARED mappings stay shared.
 *
 *  - anonymous shared memory, mapped twice (mremap with old_size 0 makes a
 *    second mapping of the same object): after restore both aliases still
 *    see each other's writes;
 *  - a shared file mapping at a non-zero file offset: data intact, and new
 *    writes through the mapping reach the file (pread), writes to the file
 *    (pwrite) show in the mapping;
 *  - a read-only shared mapping of a file opened O_RDONLY.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>

#define PS		4096UL
#define ASHM_LEN	(16 * PS)
#define FILE_PAGES	12
#define FMAP_OFF	(2 * PS)
#define FMAP_LEN	(8 * PS)
#define RO_LEN		(4 * PS)

#define MAX_VMAS 8

static void snap(void **addrs, int n, struct test_vma *out)
{
	int i;

	for (i = 0; i < n; i++)
		if (test_collect_smaps((unsigned long)addrs[i], (unsigned long)addrs[i] + 1,
				       &out[i], 1) != 1)
			fail("no VMA at %p", addrs[i]);
}

int main(int argc, char **argv)
{
	struct test_vma before[4], after[4];
	char *ashm, *alias, *fmap, *ro, *buf;
	void *addrs[4];
	int fd, rofd;

	test_init(argc, argv);

	buf = malloc(FILE_PAGES * PS);
	if (!buf)
		fail("malloc");

	ashm = mmap(NULL, ASHM_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ashm == MAP_FAILED)
		fail("mmap shared anon");
	alias = mremap(ashm, 0, ASHM_LEN, MREMAP_MAYMOVE);
	if (alias == MAP_FAILED)
		fail("mremap alias");
	datagen(ashm, ASHM_LEN, 1);
	if (datachk(alias, ASHM_LEN, 1))
		fail("the alias does not share the data");

	fd = open("mmap_shared00.file", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail("open");
	datagen(buf, FILE_PAGES * PS, 2);
	if (test_write_all(fd, buf, FILE_PAGES * PS) != (ssize_t)(FILE_PAGES * PS))
		fail("write");
	fmap = mmap(NULL, FMAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, FMAP_OFF);
	if (fmap == MAP_FAILED)
		fail("mmap shared file");
	/* Half of the mapping rewritten through memory, half left as is. */
	datagen_at(fmap, FMAP_LEN / 2, 3, 0);

	rofd = open("mmap_shared00.file", O_RDONLY);
	if (rofd < 0)
		fail("open ro");
	ro = mmap(NULL, RO_LEN, PROT_READ, MAP_SHARED, rofd, 0);
	if (ro == MAP_FAILED)
		fail("mmap ro");
	close(rofd);
	if (datachk(ro, FMAP_OFF, 2) || datachk_at(ro + FMAP_OFF, RO_LEN - FMAP_OFF, 3, 0))
		fail("ro mapping does not show the file");

	addrs[0] = ashm;
	addrs[1] = alias;
	addrs[2] = fmap;
	addrs[3] = ro;
	snap(addrs, 4, before);

	test_daemon();
	test_waitsig();

	snap(addrs, 4, after);
	test_cmp_vmas("mappings", before, 4, after, 4);

	/* Anonymous shared memory. */
	if (datachk(ashm, ASHM_LEN, 1))
		pr_err("shared anon: data mismatch");
	if (datachk(alias, ASHM_LEN, 1))
		pr_err("shared anon alias: data mismatch");
	datagen(ashm, PS, 10);
	datagen(alias + ASHM_LEN - PS, PS, 11);
	if (datachk(alias, PS, 10))
		pr_err("shared anon: a write is not seen through the alias");
	if (datachk(ashm + ASHM_LEN - PS, PS, 11))
		pr_err("shared anon: a write through the alias is not seen");

	/* Shared file mapping. */
	if (datachk_at(fmap, FMAP_LEN / 2, 3, 0) ||
	    datachk_at(fmap + FMAP_LEN / 2, FMAP_LEN / 2, 2, FMAP_OFF + FMAP_LEN / 2))
		pr_err("shared file mapping: data mismatch");
	if (pread(fd, buf, FILE_PAGES * PS, 0) != (ssize_t)(FILE_PAGES * PS))
		fail("pread");
	if (datachk_at(buf, FMAP_OFF, 2, 0) ||
	    datachk_at(buf + FMAP_OFF, FMAP_LEN / 2, 3, 0) ||
	    datachk_at(buf + FMAP_OFF + FMAP_LEN / 2,
		       FILE_PAGES * PS - FMAP_OFF - FMAP_LEN / 2, 2, FMAP_OFF + FMAP_LEN / 2))
		pr_err("the file does not hold what was written through the mapping");
	datagen(fmap + FMAP_LEN - PS, PS, 12);
	if (pread(fd, buf, PS, FMAP_OFF + FMAP_LEN - PS) != (ssize_t)PS)
		fail("pread");
	if (datachk(buf, PS, 12))
		pr_err("a write through the mapping after restore does not reach the file");
	datagen(buf, PS, 13);
	if (pwrite(fd, buf, PS, FMAP_OFF + PS) != (ssize_t)PS)
		fail("pwrite");
	if (datachk(fmap + PS, PS, 13))
		pr_err("a write to the file after restore does not show in the mapping");

	/* Read-only shared mapping follows the file too. */
	if (datachk(ro, FMAP_OFF, 2) || datachk_at(ro + FMAP_OFF, PS, 3, 0) ||
	    datachk(ro + FMAP_OFF + PS, PS, 13))
		pr_err("read-only shared mapping does not show the file");

	test_result();
	return 0;
}
