/*
 * file_replaced00: a file replaced at its path by rename() stays the old one.
 *
 * The test opens a file, then renames a new file over its path.  After
 * restore the fd must still be the old file (old contents, not the inode now
 * at the path, offset kept), and the new file at the path is untouched.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define OLD	"the old contents of the file\n"
#define NEW	"the new file, renamed over the old one\n"

int main(int argc, char **argv)
{
	struct stat fst, pst;
	char buf[128];
	int fd, nfd;

	test_init(argc, argv);

	fd = open("file_replaced00.file", O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, OLD, strlen(OLD)) != (ssize_t)strlen(OLD))
		fail("create the old file");
	if (lseek(fd, 4, SEEK_SET) != 4)
		fail("lseek");
	nfd = open("file_replaced00.new", O_RDWR | O_CREAT | O_EXCL, 0600);
	if (nfd < 0 || write(nfd, NEW, strlen(NEW)) != (ssize_t)strlen(NEW))
		fail("create the new file");
	close(nfd);
	if (rename("file_replaced00.new", "file_replaced00.file"))
		fail("rename");

	test_daemon();
	test_waitsig();

	if (fstat(fd, &fst) || stat("file_replaced00.file", &pst))
		fail("stat");
	if (fst.st_ino == pst.st_ino && fst.st_dev == pst.st_dev)
		pr_err("the fd is now the file that replaced the old one");
	if (lseek(fd, 0, SEEK_CUR) != 4)
		pr_err("offset %ld", (long)lseek(fd, 0, SEEK_CUR));
	memset(buf, 0, sizeof(buf));
	if (pread(fd, buf, sizeof(buf), 0) != (ssize_t)strlen(OLD) || strcmp(buf, OLD))
		pr_err("the fd reads %s", buf);
	memset(buf, 0, sizeof(buf));
	nfd = open("file_replaced00.file", O_RDONLY);
	if (nfd < 0 || read(nfd, buf, sizeof(buf)) != (ssize_t)strlen(NEW) || strcmp(buf, NEW))
		pr_err("the file at the path reads %s", buf);

	test_result();
	return 0;
}
