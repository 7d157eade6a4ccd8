/*
 * dir_deleted00: fds of removed directories and of a removed device node.
 *
 * Directory d (mode 0751) is held by an O_RDONLY fd and an O_PATH fd, its
 * subdirectory d/sub by a third fd; both are removed (sub first).  A node
 * of /dev/null (1:3, mode 0620) is opened O_RDWR and unlinked.  After
 * restore: the two fds of d are one inode, sub's ".." is d, all three are
 * directories without links whose fd links end in " (deleted)", nothing
 * can be created in them (ENOENT), the device fd is a 1:3 node (mode 0620,
 * no links) that takes writes and reads EOF, and nothing is at the old
 * paths.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void deleted_link(int fd, const char *name)
{
	char path[64], link[512];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (n < 11 || strcmp(link + n - 10, " (deleted)") || !strstr(link, name))
		pr_err("fd %d links to %s", fd, link);
}

int main(int argc, char **argv)
{
	struct stat d, p, sub, up, dev;
	int dfd, pfd, sfd, nfd;
	char c;

	test_init(argc, argv);

	umask(0);
	if (mkdir("d", 0751) || mkdir("d/sub", 0700))
		fail("mkdir");
	dfd = open("d", O_RDONLY | O_DIRECTORY);
	pfd = open("d", O_PATH);
	sfd = open("d/sub", O_RDONLY | O_DIRECTORY);
	if (mknod("null", S_IFCHR | 0620, makedev(1, 3)))
		fail("mknod");
	nfd = open("null", O_RDWR);
	if (dfd < 0 || pfd < 0 || sfd < 0 || nfd < 0)
		fail("open");
	if (rmdir("d/sub") || rmdir("d") || unlink("null"))
		fail("remove");

	test_daemon();
	test_waitsig();

	if (fstat(dfd, &d) || fstat(pfd, &p) || fstat(sfd, &sub) || fstatat(sfd, "..", &up, 0) || fstat(nfd, &dev))
		fail("fstat");
	if (!S_ISDIR(d.st_mode) || (d.st_mode & 07777) != 0751 || d.st_nlink)
		pr_err("d: mode %o, %lu links", d.st_mode, (unsigned long)d.st_nlink);
	if (d.st_ino != p.st_ino || d.st_dev != p.st_dev)
		pr_err("the two fds of d are different directories now");
	if (!S_ISDIR(sub.st_mode) || (sub.st_mode & 07777) != 0700 || sub.st_nlink)
		pr_err("sub: mode %o, %lu links", sub.st_mode, (unsigned long)sub.st_nlink);
	if (up.st_ino != d.st_ino)
		pr_err("sub's parent is not d");
	deleted_link(dfd, "/d");
	deleted_link(pfd, "/d");
	deleted_link(sfd, "/d/sub");
	deleted_link(nfd, "/null");
	if (openat(dfd, "x", O_WRONLY | O_CREAT, 0600) >= 0 || errno != ENOENT)
		pr_err("a file could be created in the removed d");
	if (openat(sfd, "x", O_WRONLY | O_CREAT, 0600) >= 0 || errno != ENOENT)
		pr_err("a file could be created in the removed sub");
	if (!S_ISCHR(dev.st_mode) || dev.st_rdev != makedev(1, 3) || (dev.st_mode & 07777) != 0620 || dev.st_nlink)
		pr_err("device: mode %o rdev %lx, %lu links", dev.st_mode, (unsigned long)dev.st_rdev,
		       (unsigned long)dev.st_nlink);
	if (write(nfd, "null", 4) != 4 || read(nfd, &c, 1) != 0)
		pr_err("the device is not /dev/null");
	if (access("d", F_OK) == 0 || access("null", F_OK) == 0)
		pr_err("something is at an old path again");

	test_result();
	return 0;
}
