/*
 * cwd00: the current directory (a subdirectory of the work dir) survives.
 *
 * After restore getcwd() and /proc/self/cwd give the same path, "." is the
 * same inode, and relative paths resolve there (a file created before).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char cwd_b[PATH_MAX], cwd_a[PATH_MAX], link_b[PATH_MAX], link_a[PATH_MAX];
	char root_b[PATH_MAX], root_a[PATH_MAX], buf[64];
	struct stat st_b, st_a;
	ssize_t n;
	int fd;

	test_init(argc, argv);

	if (mkdir("cwd00.dir", 0755) && errno != EEXIST)
		fail("mkdir");
	if (mkdir("cwd00.dir/sub dir", 0700) && errno != EEXIST)
		fail("mkdir");
	if (chdir("cwd00.dir/sub dir"))
		fail("chdir");
	fd = open("marker", O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0 || write(fd, "cwd00 marker", 12) != 12 || close(fd))
		fail("create marker");

	if (!getcwd(cwd_b, sizeof(cwd_b)) || stat(".", &st_b))
		fail("getcwd");
	n = readlink("/proc/self/cwd", link_b, sizeof(link_b) - 1);
	if (n < 0)
		fail("readlink");
	link_b[n] = '\0';
	n = readlink("/proc/self/root", root_b, sizeof(root_b) - 1);
	if (n < 0)
		fail("readlink");
	root_b[n] = '\0';

	test_daemon();
	test_waitsig();

	if (!getcwd(cwd_a, sizeof(cwd_a)))
		pr_err("getcwd");
	else if (strcmp(cwd_a, cwd_b))
		pr_err("getcwd: '%s' -> '%s'", cwd_b, cwd_a);
	n = readlink("/proc/self/cwd", link_a, sizeof(link_a) - 1);
	if (n < 0)
		fail("readlink");
	link_a[n] = '\0';
	if (strcmp(link_a, link_b))
		pr_err("/proc/self/cwd: '%s' -> '%s'", link_b, link_a);
	n = readlink("/proc/self/root", root_a, sizeof(root_a) - 1);
	if (n < 0)
		fail("readlink");
	root_a[n] = '\0';
	if (strcmp(root_a, root_b))
		pr_err("/proc/self/root: '%s' -> '%s'", root_b, root_a);
	if (stat(".", &st_a))
		fail("stat .");
	if (st_a.st_ino != st_b.st_ino || st_a.st_dev != st_b.st_dev)
		pr_err("'.' is another inode: %lu:%lu -> %lu:%lu",
		       (unsigned long)st_b.st_dev, (unsigned long)st_b.st_ino,
		       (unsigned long)st_a.st_dev, (unsigned long)st_a.st_ino);
	fd = open("marker", O_RDONLY);
	if (fd < 0)
		pr_err("open marker");
	else {
		n = read(fd, buf, sizeof(buf));
		if (n != 12 || memcmp(buf, "cwd00 marker", 12))
			pr_err("marker content");
		close(fd);
	}

	test_result();
	return 0;
}
