/*
 * mmap_deleted00: MAP_SHARED and MAP_PRIVATE mappings of unlinked files.
 *
 * File A (4 pages, mode 0640) is open O_RDWR, mapped MAP_SHARED (its
 * first page written through the mapping) and MAP_PRIVATE (its first page
 * copied on write), then unlinked.  File B (3 pages) is mapped MAP_PRIVATE
 * read-only with its fd closed, then unlinked.  After restore: every area
 * names its file " (deleted)", the two areas of A and A's fd are one inode
 * (nlink 0), contents are as before (the private copy of A's first page
 * too), a write through the shared area is seen through the fd and one
 * through the fd in both areas of A (the private one where it was not
 * copied), and nothing is at the old paths.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE	4096
#define APAGES	4
#define BPAGES	3

static unsigned long area_ino(const void *addr, const char *name)
{
	struct test_vma v;
	size_t l = strlen(" (deleted)"), n;

	if (test_find_vma(addr, &v)) {
		pr_err("%s: no area at %p", name, addr);
		return 0;
	}
	n = strlen(v.path);
	if (n < l || strcmp(v.path + n - l, " (deleted)") || !strstr(v.path, name))
		pr_err("%s: the area at %p is %s", name, addr, v.path);
	return v.ino;
}

int main(int argc, char **argv)
{
	char *shared, *private, *bmap, buf[PAGE];
	struct stat st;
	int fd, fdb;

	test_init(argc, argv);

	fd = open("mmap_deleted00.a", O_RDWR | O_CREAT | O_EXCL, 0640);
	fdb = open("mmap_deleted00.b", O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || fdb < 0)
		fail("open");
	for (int i = 0; i < APAGES; i++) {
		datagen(buf, PAGE, 100 + i);
		if (pwrite(fd, buf, PAGE, i * PAGE) != PAGE)
			fail("pwrite a");
	}
	for (int i = 0; i < BPAGES; i++) {
		datagen(buf, PAGE, 200 + i);
		if (pwrite(fdb, buf, PAGE, i * PAGE) != PAGE)
			fail("pwrite b");
	}
	shared = mmap(NULL, APAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	private = mmap(NULL, APAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	bmap = mmap(NULL, BPAGES * PAGE, PROT_READ, MAP_PRIVATE, fdb, 0);
	if (shared == MAP_FAILED || private == MAP_FAILED || bmap == MAP_FAILED)
		fail("mmap");
	datagen(shared, PAGE, 300);                 /* into the file */
	datagen(private, PAGE, 301);                /* a private copy */
	if (private[PAGE] != shared[PAGE])          /* fault the second page in, uncopied */
		fail("private page");
	close(fdb);
	if (unlink("mmap_deleted00.a") || unlink("mmap_deleted00.b"))
		fail("unlink");

	test_daemon();
	test_waitsig();

	if (fstat(fd, &st))
		fail("fstat");
	if (st.st_nlink || st.st_size != APAGES * PAGE || (st.st_mode & 07777) != 0640)
		pr_err("a: nlink %lu size %ld mode %o", (unsigned long)st.st_nlink, (long)st.st_size, st.st_mode);
	if (area_ino(shared, "mmap_deleted00.a") != st.st_ino || area_ino(private, "mmap_deleted00.a") != st.st_ino)
		pr_err("the areas of a and its fd are not one inode");
	area_ino(bmap, "mmap_deleted00.b");
	if (datachk(shared, PAGE, 300) || datachk(private, PAGE, 301))
		pr_err("first pages differ");
	for (int i = 1; i < APAGES; i++)
		if (datachk(shared + i * PAGE, PAGE, 100 + i) || datachk(private + i * PAGE, PAGE, 100 + i))
			pr_err("a: page %d differs", i);
	for (int i = 0; i < BPAGES; i++)
		if (datachk(bmap + i * PAGE, PAGE, 200 + i))
			pr_err("b: page %d differs", i);
	if (pread(fd, buf, PAGE, 0) != PAGE || datachk(buf, PAGE, 300))
		pr_err("the file lost what the shared area wrote before the dump");
	shared[2 * PAGE] = 'S';
	if (pread(fd, buf, 1, 2 * PAGE) != 1 || buf[0] != 'S')
		pr_err("a write through the shared area is not seen through the fd");
	if (pwrite(fd, "F", 1, 3 * PAGE) != 1 || shared[3 * PAGE] != 'F' || private[3 * PAGE] != 'F')
		pr_err("a write through the fd is not seen in the areas");
	if (access("mmap_deleted00.a", F_OK) == 0 || access("mmap_deleted00.b", F_OK) == 0)
		pr_err("something is at an old path again");

	test_result();
	return 0;
}
