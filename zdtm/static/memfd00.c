/*
 * memfd00: memfd objects survive with name, contents, holes, seals, offset,
 * flags, and stay one object across an fd, a mapping and a child process.
 *
 * A: "refcr-a", MFD_CLOEXEC|MFD_ALLOW_SEALING, 1 MiB with data at the start,
 *    in the middle and (through a MAP_SHARED mapping) at 256K, the rest
 *    holes; sealed against growing and shrinking; offset 12345.  A child
 *    inherits the mapping.
 * B: "refcr-b", no sealing (F_SEAL_SEAL), not close-on-exec, 3000 bytes.
 * After restore: names, seals, cloexec, access mode, offset, size and data
 * are the same, A is still sparse, writes through A's fd show in the
 * parent's mapping and in the child's, and A still refuses to grow.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ASIZE	(1 << 20)
#define MID	(512 * 1024)
#define MAPOFF	(256 * 1024)
#define MARK	(700 * 1024)
#define BSIZE	3000
#define APOS	12345

static void check_link(int fd, const char *want)
{
	char path[64], buf[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0) {
		pr_err("readlink %s", path);
		return;
	}
	buf[n] = 0;
	if (strcmp(buf, want))
		pr_err("fd %d is %s, expected %s", fd, buf, want);
}

int main(int argc, char **argv)
{
	char *exp, *got, *map;
	int a, b;
	off_t hole;
	pid_t pid;

	test_init(argc, argv);

	exp = calloc(1, ASIZE);
	got = malloc(ASIZE);
	if (!exp || !got)
		fail("malloc");
	datagen(exp, 8192, 1);
	datagen(exp + MID, 5000, 2);
	datagen(exp + MAPOFF, 4096, 3);

	a = memfd_create("refcr-a", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	b = memfd_create("refcr-b", 0);
	if (a < 0 || b < 0)
		fail("memfd_create");
	if (ftruncate(a, ASIZE))
		fail("ftruncate");
	if (pwrite(a, exp, 8192, 0) != 8192 || pwrite(a, exp + MID, 5000, MID) != 5000)
		fail("pwrite");
	map = mmap(NULL, ASIZE, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
	if (map == MAP_FAILED)
		fail("mmap");
	memcpy(map + MAPOFF, exp + MAPOFF, 4096);
	if (fcntl(a, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		fail("F_ADD_SEALS");
	if (lseek(a, APOS, SEEK_SET) != APOS)
		fail("lseek");
	datagen(got, BSIZE, 4);
	if (write(b, got, BSIZE) != BSIZE)
		fail("write b");

	pid = test_fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		test_child_ready();
		test_waitsig();
		datagen(got, 100, 5);
		if (memcmp(map + MARK, got, 100))
			pr_err("child: a write through the fd does not show in the child's mapping");
		if (memcmp(map, exp, 8192) || memcmp(map + MAPOFF, exp + MAPOFF, 4096))
			pr_err("child: mapping contents differ");
		test_child_exit();
	}

	test_daemon();
	test_waitsig();

	check_link(a, "/memfd:refcr-a (deleted)");
	check_link(b, "/memfd:refcr-b (deleted)");
	if (fcntl(a, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW))
		pr_err("seals of a: %#x", fcntl(a, F_GET_SEALS));
	if (fcntl(b, F_GET_SEALS) != F_SEAL_SEAL)
		pr_err("seals of b: %#x (should allow no sealing)", fcntl(b, F_GET_SEALS));
	if (!(fcntl(a, F_GETFD) & FD_CLOEXEC) || (fcntl(b, F_GETFD) & FD_CLOEXEC))
		pr_err("close-on-exec flags changed");
	if ((fcntl(a, F_GETFL) & O_ACCMODE) != O_RDWR || (fcntl(b, F_GETFL) & O_ACCMODE) != O_RDWR)
		pr_err("access modes changed");
	if (lseek(a, 0, SEEK_CUR) != APOS)
		pr_err("offset of a: %ld", (long)lseek(a, 0, SEEK_CUR));
	if (lseek(b, 0, SEEK_CUR) != BSIZE)
		pr_err("offset of b: %ld", (long)lseek(b, 0, SEEK_CUR));

	hole = lseek(a, 0, SEEK_HOLE);	/* before anything touches the mapping */
	if (hole != 8192)
		pr_err("a is not sparse any more: first hole at %ld", (long)hole);
	if (pread(a, got, ASIZE, 0) != ASIZE || memcmp(got, exp, ASIZE))
		pr_err("contents of a differ");
	if (memcmp(map, exp, 8192) || memcmp(map + MAPOFF, exp + MAPOFF, 4096) ||
	    memcmp(map + MID, exp + MID, 5000))
		pr_err("contents of the mapping differ");
	datagen(exp, BSIZE, 4);
	if (pread(b, got, BSIZE + 10, 0) != BSIZE || memcmp(got, exp, BSIZE))
		pr_err("contents of b differ");

	/* One object: the fd, our mapping and the child's. */
	datagen(got, 100, 5);
	if (pwrite(a, got, 100, MARK) != 100)
		pr_err("pwrite a");
	if (memcmp(map + MARK, got, 100))
		pr_err("a write through the fd does not show in the mapping");
	map[MID] ^= 0xff;
	if (pread(a, got, 1, MID) != 1 || got[0] != map[MID])
		pr_err("a write through the mapping does not show through the fd");

	if (ftruncate(a, 2 * ASIZE) == 0 || errno != EPERM)
		pr_err("a grew despite F_SEAL_GROW");

	test_children_check();
	test_result();
	return 0;
}
