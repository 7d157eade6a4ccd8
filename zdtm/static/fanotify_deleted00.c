/*
 * fanotify_deleted00: fanotify inode marks on a deleted file and on a removed
 * directory that the process still holds.
 *
 * A group (FAN_CLASS_NOTIF, O_NONBLOCK, event fds O_RDONLY) marks file a
 * (FAN_OPEN|FAN_MODIFY|FAN_CLOSE), open O_RDWR and unlinked; file b
 * (FAN_OPEN|FAN_CLOSE_WRITE), mapped MAP_SHARED, its fd closed, unlinked;
 * directory d (FAN_OPEN|FAN_CLOSE_NOWRITE|FAN_ONDIR), open and removed.  After
 * restore: the marks are on the inodes of a's fd, b's mapping and d's fd,
 * with their masks (fdinfo), and nothing is queued (refcr made, reopened and
 * closed the ghosts: none of it may reach a mark); writing a gives FAN_MODIFY
 * with an fd of a; opening b through /proc/self/map_files for writing and
 * closing it FAN_OPEN, then FAN_CLOSE_WRITE; opening d again FAN_OPEN,
 * closing that FAN_CLOSE_NOWRITE (a group without FAN_REPORT_FID is not told
 * FAN_ONDIR); closing a's last fd
 * FAN_CLOSE_WRITE, and the mark goes with the inode (as it does unrestored,
 * run_plain.py: nothing else holds the ghost).
 */
#include "zdtmtst.h"
#include "znotify.h"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define A_MASK	(FAN_OPEN | FAN_MODIFY | FAN_CLOSE)
#define B_MASK	(FAN_OPEN | FAN_CLOSE_WRITE)
#define D_MASK	(FAN_OPEN | FAN_CLOSE_NOWRITE | FAN_ONDIR)

static int fan;

static void mark(uint64_t mask, const char *path)
{
	if (fanotify_mark(fan, FAN_MARK_ADD, mask, AT_FDCWD, path))
		fail("fanotify_mark %s", path);
}

static void check_mark(ino_t ino, unsigned long mask, const char *what)
{
	unsigned long m = zfan_mark_mask(fan, ino);

	if (m != mask)
		pr_err("%s: the mark on inode %lu has mask %#lx, expected %#lx", what, (unsigned long)ino, m, mask);
}

int main(int argc, char **argv)
{
	struct stat sa, sb, sd;
	struct zfan_ev ev[16];
	char path[128], *map;
	int fa, fb, d, fd;

	test_init(argc, argv);
	fa = open("fanotify_deleted00.a", O_RDWR | O_CREAT | O_EXCL, 0600);
	fb = open("fanotify_deleted00.b", O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fa < 0 || fb < 0 || ftruncate(fb, 4096) || mkdir("fanotify_deleted00.d", 0755))
		fail("files");
	d = open("fanotify_deleted00.d", O_RDONLY | O_DIRECTORY);
	fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	if (d < 0 || fan < 0)
		fail("fanotify_init");
	mark(A_MASK, "fanotify_deleted00.a");
	mark(B_MASK, "fanotify_deleted00.b");
	mark(D_MASK, "fanotify_deleted00.d");
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fb, 0);
	if (map == MAP_FAILED)
		fail("mmap");
	if (unlink("fanotify_deleted00.a") || unlink("fanotify_deleted00.b") || close(fb) ||
	    rmdir("fanotify_deleted00.d"))
		fail("unlink");
	zfan_read(fan, 0, ev, 16);	/* b's FAN_CLOSE_WRITE */

	test_daemon();
	test_waitsig();

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)map, (unsigned long)map + 4096);
	if (fstat(fa, &sa) || stat(path, &sb) || fstat(d, &sd) || sa.st_nlink || sb.st_nlink || sd.st_nlink)
		fail("the files are not deleted any more");
	check_mark(sa.st_ino, A_MASK, "a (fd)");
	check_mark(sb.st_ino, B_MASK, "b (mapping)");
	check_mark(sd.st_ino, D_MASK, "d (fd)");
	zfan_expect(fan, "after restore", NULL, 0);

	if (write(fa, "x", 1) != 1)
		pr_err("write a");
	zfan_expect(fan, "write to a", (struct zfan_ev[]){ { FAN_MODIFY, sa.st_ino } }, 1);
	map[0] = 'y';
	fb = open(path, O_WRONLY);
	if (fb < 0)
		pr_err("open b through its mapping");
	zfan_expect(fan, "open of b", (struct zfan_ev[]){ { FAN_OPEN, sb.st_ino } }, 1);
	if (fb >= 0 && close(fb))
		pr_err("close b");
	zfan_expect(fan, "close of b", (struct zfan_ev[]){ { FAN_CLOSE_WRITE, sb.st_ino } }, 1);
	fd = openat(d, ".", O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		pr_err("open d again");
	zfan_expect(fan, "open of d", (struct zfan_ev[]){ { FAN_OPEN, sd.st_ino } }, 1);
	if (fd >= 0 && close(fd))
		pr_err("close d");
	zfan_expect(fan, "close of d", (struct zfan_ev[]){ { FAN_CLOSE_NOWRITE, sd.st_ino } }, 1);
	if (close(fa))
		pr_err("close a");
	zfan_expect(fan, "last close of a", (struct zfan_ev[]){ { FAN_CLOSE_WRITE, sa.st_ino } }, 1);
	if (zfan_mark_mask(fan, sa.st_ino))
		pr_err("the mark on a outlived the file");
	test_result();
	return 0;
}
