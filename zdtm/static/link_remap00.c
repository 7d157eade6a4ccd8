/*
 * link_remap00: a deleted file still linked under another name stays that
 * one inode (--link-remap).
 *
 * The test writes lr.a, links it as lr.b, unlinks lr.a, keeps lr.a open
 * (so /proc shows "lr.a (deleted)"), and sets its times.  After restore:
 * the fd and lr.b are one inode (same st_ino, two-way writes), the link
 * count is 1, the times are kept, and no remap name is left in the
 * directory.
 */
#include "zdtmtst.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec times[2] = { { .tv_sec = 1100000000 }, { .tv_sec = 1300000000 } };
	struct stat a, b;
	struct dirent *de;
	char buf[8];
	DIR *d;
	int fd, fb;

	test_init(argc, argv);

	unlink("lr.b");
	fd = open("lr.a", O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0 || write(fd, "before", 6) != 6 || link("lr.a", "lr.b") || unlink("lr.a") ||
	    futimens(fd, times))
		fail("set up");

	test_daemon();
	test_waitsig();

	if (fstat(fd, &a) || stat("lr.b", &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		pr_err("the fd is not lr.b any more");
	if (a.st_nlink != 1)
		pr_err("%ld links, expected 1", (long)a.st_nlink);
	if (a.st_mtim.tv_sec != times[1].tv_sec)
		pr_err("mtime %ld, expected %ld", (long)a.st_mtim.tv_sec, (long)times[1].tv_sec);
	fb = open("lr.b", O_RDWR);
	if (fb < 0 || pwrite(fb, "AF", 2, 0) != 2 || pread(fd, buf, 6, 0) != 6 || memcmp(buf, "AFfore", 6))
		pr_err("a write through lr.b is not seen through the fd");
	d = opendir(".");
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, ".refcr-link-remap", 17))
			pr_err("a remap name is left: %s", de->d_name);
	unlink("lr.b");

	test_result();
	return 0;
}
