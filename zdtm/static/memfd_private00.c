/*
 * memfd_private00: memfds mapped MAP_PRIVATE (issue 14).
 *
 * `a`: a memfd of three pages ('a', 'b', 'c'), open, mapped shared once and
 * privately once; page 0 of the private area is written before the dump
 * (copied on write), pages 1 and 2 are not.  `r`: a memfd of two pages,
 * mapped privately read-only from an O_RDONLY reopen, then every fd of it
 * closed: only the mapping holds it.  After restore: the private area shows
 * its own page 0 and the object's pages 1 and 2; a write to page 1 through
 * the fd shows through the private area (an untouched private page is still
 * the object's) while one through the private area stays out of the object
 * and the shared area; `r` reads back, still read-only.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

static int filled(const char *name, const char *fill, int npages)
{
	int fd = memfd_create(name, 0);
	char buf[PAGE];

	if (fd < 0)
		fail("memfd_create");
	for (int i = 0; i < npages; i++) {
		memset(buf, fill[i], PAGE);
		if (write(fd, buf, PAGE) != PAGE)
			fail("write %s", name);
	}
	return fd;
}

static void want(const char *p, char c, const char *who)
{
	for (int i = 0; i < PAGE; i++)
		if (p[i] != c) {
			pr_err("%s: byte %d is %#x, not '%c'", who, i, (unsigned char)p[i], c);
			return;
		}
}

int main(int argc, char **argv)
{
	char *shared, *priv, *ro, path[64];
	int a, r, rfd;

	test_init(argc, argv);
	a = filled("memfd_private00.a", "abc", 3);
	shared = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
	priv = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, a, 0);
	r = filled("memfd_private00.r", "xy", 2);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", r);
	rfd = open(path, O_RDONLY);
	ro = rfd < 0 ? MAP_FAILED : mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, rfd, 0);
	if (shared == MAP_FAILED || priv == MAP_FAILED || ro == MAP_FAILED)
		fail("mmap");
	close(rfd);
	close(r);
	memset(priv, 'P', PAGE);        /* page 0: the area's own copy */
	want(priv + PAGE, 'b', "before: private page 1");

	test_daemon();
	test_waitsig();

	want(priv, 'P', "private page 0");
	want(priv + PAGE, 'b', "private page 1");
	want(priv + 2 * PAGE, 'c', "private page 2");
	want(shared, 'a', "shared page 0");
	want(ro, 'x', "read-only page 0");
	want(ro + PAGE, 'y', "read-only page 1");
	if (pwrite(a, "B", 1, PAGE) != 1)
		pr_err("pwrite to a");
	if (priv[PAGE] != 'B')
		pr_err("a write to the object does not show through an untouched private page");
	if (shared[PAGE] != 'B')
		pr_err("a write to the object does not show through the shared area");
	priv[2 * PAGE] = 'Q';
	if (shared[2 * PAGE] != 'c')
		pr_err("a write to the private area reached the object");
	memset(shared, 'A', 1);
	if (priv[0] != 'P')
		pr_err("the private copy of page 0 follows the object again");
	test_result();
	return 0;
}
