/*
 * inotify_deleted00: inotify watches on deleted files that are still open.
 *
 * File a (IN_MODIFY|IN_ATTRIB, wd 1) is open and unlinked; file b is
 * watched (IN_CLOSE_WRITE, wd 2), open, mapped MAP_SHARED and unlinked, its
 * fd then closed (the mapping holds it).  After restore: writing a through
 * its fd gives IN_MODIFY on wd 1, chmod of it IN_ATTRIB on wd 1; writing
 * b through its mapping and msync then opening and closing it for writing
 * through /proc/self/map_files gives IN_CLOSE_WRITE on wd 2; the files are
 * still deleted, and nothing else is queued.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int next_event(int ifd, int *wd, uint32_t *mask)
{
	static char buf[4096] __attribute__((aligned(8)));
	static ssize_t len, pos;
	struct inotify_event *ev;
	struct pollfd p = { .fd = ifd, .events = POLLIN };

	if (pos >= len) {
		if (poll(&p, 1, 3000) != 1)
			return -1;
		len = read(ifd, buf, sizeof(buf));
		pos = 0;
		if (len <= 0)
			return -1;
	}
	ev = (struct inotify_event *)(buf + pos);
	*wd = ev->wd;
	*mask = ev->mask;
	pos += sizeof(*ev) + ev->len;
	return 0;
}

static void expect(int ifd, int wd, uint32_t mask, const char *what)
{
	uint32_t m;
	int w;

	if (next_event(ifd, &w, &m))
		pr_err("%s: no event", what);
	else if (w != wd || m != mask)
		pr_err("%s: event wd %d mask %x, expected wd %d mask %x", what, w, m, wd, mask);
}

int main(int argc, char **argv)
{
	char path[128], *map;
	struct pollfd p;
	struct stat st;
	int ifd, fa, fb;

	test_init(argc, argv);
	ifd = inotify_init1(IN_NONBLOCK);
	fa = open("inotify_deleted00.a", O_RDWR | O_CREAT | O_EXCL, 0600);
	fb = open("inotify_deleted00.b", O_RDWR | O_CREAT | O_EXCL, 0600);
	if (ifd < 0 || fa < 0 || fb < 0 || ftruncate(fb, 4096))
		fail("open");
	if (inotify_add_watch(ifd, "inotify_deleted00.a", IN_MODIFY | IN_ATTRIB) != 1 ||
	    inotify_add_watch(ifd, "inotify_deleted00.b", IN_CLOSE_WRITE) != 2)
		fail("inotify_add_watch");
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fb, 0);
	if (map == MAP_FAILED)
		fail("mmap");
	if (unlink("inotify_deleted00.a") || unlink("inotify_deleted00.b") || close(fb))
		fail("unlink");
	while (read(ifd, path, sizeof(path)) > 0)       /* IN_ATTRIB (links), IN_CLOSE_WRITE */
		;

	test_daemon();
	test_waitsig();

	if (fstat(fa, &st) || st.st_nlink)
		pr_err("a is not deleted");
	if (write(fa, "x", 1) != 1)
		pr_err("write a");
	expect(ifd, 1, IN_MODIFY, "write to a");
	if (fchmod(fa, 0640))
		pr_err("fchmod a");
	expect(ifd, 1, IN_ATTRIB, "chmod of a");
	map[0] = 'y';
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)map, (unsigned long)map + 4096);
	fb = open(path, O_WRONLY);
	if (fb < 0 || close(fb))
		pr_err("open b through its mapping");
	expect(ifd, 2, IN_CLOSE_WRITE, "close of b");
	p = (struct pollfd){ .fd = ifd, .events = POLLIN };
	if (poll(&p, 1, 200) != 0)
		pr_err("more events queued");
	test_result();
	return 0;
}
