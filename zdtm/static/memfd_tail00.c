/*
 * memfd_tail00: a mapped memfd whose size is not a multiple of the page size
 * keeps the bytes of its last, partial page.
 *
 * The memfd is 5000 bytes (one page and 904 bytes), mapped MAP_SHARED over
 * two pages, with data in both; a second mapped memfd after it must not be
 * shifted by the first one's tail.  After restore: sizes, contents through
 * the fds and the mappings, zeros past the end of the first one's data, and
 * both mappings still shared with their files.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG	4096
#define TSIZE	5000
#define NSIZE	(3 * PG)

static int make(const char *name, size_t size, unsigned int seed, char **map)
{
	char *buf = malloc(size);
	int fd = memfd_create(name, 0);

	if (fd < 0 || !buf)
		fail("memfd_create %s", name);
	datagen(buf, size, seed);
	if (test_write_all(fd, buf, size) != (ssize_t)size)
		fail("write %s", name);
	free(buf);
	*map = mmap(NULL, (size + PG - 1) / PG * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*map == MAP_FAILED)
		fail("mmap %s", name);
	return fd;
}

static void check_memfd(const char *what, int fd, char *map, size_t size, unsigned int seed)
{
	char *buf = malloc(size + 1);
	struct stat st;

	if (fstat(fd, &st) || st.st_size != (off_t)size)
		pr_err("%s: size %lld, not %zu", what, (long long)st.st_size, size);
	if (pread(fd, buf, size + 1, 0) != (ssize_t)size || datachk(buf, size, seed))
		pr_err("%s: contents through the fd differ", what);
	if (datachk(map, size, seed))
		pr_err("%s: contents through the mapping differ", what);
	for (size_t i = size; i % PG; i++)
		if (map[i]) {
			pr_err("%s: byte %zu past the end is %d", what, i, map[i]);
			break;
		}
	free(buf);
}

int main(int argc, char **argv)
{
	char *tmap, *nmap;
	int tfd, nfd;

	test_init(argc, argv);
	tfd = make("refcr-tail", TSIZE, 7, &tmap);
	nfd = make("refcr-next", NSIZE, 8, &nmap);

	test_daemon();
	test_waitsig();

	check_memfd("tail", tfd, tmap, TSIZE, 7);
	check_memfd("next", nfd, nmap, NSIZE, 8);
	tmap[TSIZE - 1] ^= 0x5a;                   /* the mapping is still the file's */
	{
		char c;

		if (pread(tfd, &c, 1, TSIZE - 1) != 1 || c != tmap[TSIZE - 1])
			pr_err("a write through the mapping is not in the file");
	}
	test_result();
	return 0;
}
