/*
 * file_deleted00: open files that were unlinked survive as deleted files.
 *
 * A sparse file (data at 0 and at 200K, 300K long, mode 0640) is opened
 * twice (two descriptions with their own offsets) and unlinked.  After
 * restore both fds are one deleted inode (nlink 0, link ends in
 * " (deleted)"), with the same size, mode, contents and offsets, and
 * nothing was left at the old path.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define FSIZE	(300 * 1024)
#define SECOND	(200 * 1024)
#define LEN	(100 * 1024)

int main(int argc, char **argv)
{
	char link[256], path[64], *buf;
	struct stat a, b, tmp;
	int fd, fd2;
	ssize_t n;

	test_init(argc, argv);

	buf = malloc(FSIZE);
	if (!buf)
		fail("malloc");
	fd = open("file_deleted00.file", O_RDWR | O_CREAT | O_EXCL, 0640);
	if (fd < 0)
		fail("open");
	datagen(buf, LEN, 11);
	if (pwrite(fd, buf, LEN, 0) != LEN)
		fail("pwrite");
	datagen(buf, 5000, 12);
	if (pwrite(fd, buf, 5000, SECOND) != 5000 || ftruncate(fd, FSIZE))
		fail("pwrite");
	fd2 = open("file_deleted00.file", O_RDONLY);
	if (fd2 < 0)
		fail("open again");
	if (lseek(fd, 5000, SEEK_SET) != 5000 || lseek(fd2, 7, SEEK_SET) != 7)
		fail("lseek");
	if (unlink("file_deleted00.file"))
		fail("unlink");

	test_daemon();
	test_waitsig();

	if (fstat(fd, &a) || fstat(fd2, &b))
		fail("fstat");
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		pr_err("the two fds are different files now");
	if (a.st_nlink != 0)
		pr_err("the file has %lu links, expected none", (unsigned long)a.st_nlink);
	if (a.st_size != FSIZE)
		pr_err("size %ld", (long)a.st_size);
	if ((a.st_mode & 07777) != 0640 || !S_ISREG(a.st_mode))
		pr_err("mode %o", a.st_mode);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (n < 10 || strcmp(link + n - 10, " (deleted)"))
		pr_err("link is %s", link);
	if (stat("file_deleted00.file", &tmp) == 0)
		pr_err("something is at the old path again");
	if (lseek(fd, 0, SEEK_CUR) != 5000 || lseek(fd2, 0, SEEK_CUR) != 7)
		pr_err("offsets %ld %ld", (long)lseek(fd, 0, SEEK_CUR), (long)lseek(fd2, 0, SEEK_CUR));
	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR || (fcntl(fd2, F_GETFL) & O_ACCMODE) != O_RDONLY)
		pr_err("access modes changed");

	if (pread(fd2, buf, FSIZE, 0) != FSIZE)
		pr_err("short read");
	if (datachk(buf, LEN, 11))
		pr_err("data at 0 differs");
	if (datachk(buf + SECOND, 5000, 12))
		pr_err("data at %d differs", SECOND);
	for (n = LEN; n < SECOND; n++)
		if (buf[n]) {
			pr_err("hole has data at %zd", n);
			break;
		}
	if (lseek(fd2, LEN, SEEK_HOLE) != LEN)
		pr_err("the hole after the first run is gone");
	/* Still writable and shared between the two descriptions. */
	if (pwrite(fd, "x", 1, 3) != 1 || pread(fd2, buf, 1, 3) != 1 || buf[0] != 'x')
		pr_err("write through one fd not seen through the other");

	test_result();
	return 0;
}
