/*
 * cwd_deleted00: the process's current directory was removed (rmdir while
 * it is in it), with a deleted file that was in it still open, and an fd
 * of the directory itself.
 *
 * After restore: the cwd is that removed directory ("." has no links and
 * is the inode of the fd of it, /proc/self/cwd ends in " (deleted)"),
 * nothing can be created in it (ENOENT), the deleted file is still its own
 * contents under "gone/f (deleted)", and nothing is at the old path.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEN 5000

int main(int argc, char **argv)
{
	struct stat before, now, dir, f;
	char buf[LEN], link[512];
	int dfd, ffd;
	ssize_t n;

	test_init(argc, argv);
	if ((mkdir("gone", 0755) && errno != EEXIST))
		fail("mkdir");
	ffd = open("gone/f", O_RDWR | O_CREAT | O_TRUNC, 0640);
	datagen(buf, LEN, 7);
	if (ffd < 0 || write(ffd, buf, LEN) != LEN || unlink("gone/f"))
		fail("file");
	if (chdir("gone"))
		fail("chdir");
	dfd = open(".", O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || rmdir("../gone") || stat(".", &before))
		fail("rmdir");
	test_daemon();
	test_waitsig();

	if (stat(".", &now) || fstat(dfd, &dir) || fstat(ffd, &f))
		fail("stat");
	if (now.st_nlink != 0 || !S_ISDIR(now.st_mode) || (now.st_mode & 07777) != 0755)
		pr_err("the cwd has %lu links, mode %o", (unsigned long)now.st_nlink, now.st_mode);
	if (now.st_ino != dir.st_ino || now.st_dev != dir.st_dev)
		pr_err("the cwd and the fd of it are different directories");
	n = readlink("/proc/self/cwd", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (n < 15 || strcmp(link + n - 15, "/gone (deleted)"))
		pr_err("the cwd is %s", link);
	if (open("f2", O_WRONLY | O_CREAT, 0600) >= 0 || errno != ENOENT)
		pr_err("a file could be created in the deleted cwd");
	if (f.st_nlink || f.st_size != LEN || (f.st_mode & 07777) != 0640)
		pr_err("the file: %lu links, size %ld, mode %o", (unsigned long)f.st_nlink, (long)f.st_size, f.st_mode);
	if (pread(ffd, buf, LEN, 0) != LEN || datachk(buf, LEN, 7))
		pr_err("the file's contents changed");
	snprintf(buf, sizeof(buf), "/proc/self/fd/%d", ffd);
	n = readlink(buf, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (n < 17 || strcmp(link + n - 17, "/gone/f (deleted)"))
		pr_err("the file is %s", link);
	if (access("../gone", F_OK) == 0)
		pr_err("something is at the old path again");
	test_result();
	return 0;
}
