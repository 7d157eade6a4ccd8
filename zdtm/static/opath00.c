/*
 * opath00: O_PATH descriptors (a file, a directory, a symlink itself with O_NOFOLLOW) come back as O_PATH
 * descriptors of the same objects: same
 * flags in fdinfo (the harness compares them), same inode, read() on them
 * still fails with EBADF, and the directory one still works as a dirfd.
 * (The dump used to fail with a traceback from fcntl(F_GETOWN_EX).)
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static int fd_file, fd_dir, fd_link, fcntl_link;
static struct stat st_file, st_dir, st_link;

static void check_state(const char *when)
{
	struct stat st;
	char c;
	int fd;

	if (fstat(fd_file, &st) || st.st_ino != st_file.st_ino)
		pr_err("%s: the O_PATH file fd names another file", when);
	if (fstat(fd_dir, &st) || st.st_ino != st_dir.st_ino)
		pr_err("%s: the O_PATH directory fd names another directory", when);
	if (fstat(fd_link, &st) || !S_ISLNK(st.st_mode) || st.st_ino != st_link.st_ino)
		pr_err("%s: the O_PATH|O_NOFOLLOW fd is not the symlink", when);
	if (fcntl(fd_link, F_GETFL) != fcntl_link)
		pr_err("%s: the symlink fd's flags %#x, expected %#x", when, fcntl(fd_link, F_GETFL), fcntl_link);
	if (read(fd_file, &c, 1) != -1 || errno != EBADF)
		pr_err("%s: read() of the O_PATH fd did not fail with EBADF", when);
	if (!(fcntl(fd_file, F_GETFL) & O_PATH) || !(fcntl(fd_dir, F_GETFD) & FD_CLOEXEC))
		pr_err("%s: flags of the O_PATH fds", when);
	fd = openat(fd_dir, "f", O_RDONLY);
	if (fd < 0 || read(fd, &c, 1) != 1 || c != 'x')
		pr_err("%s: openat(the O_PATH dir fd, \"f\")", when);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	int fd;

	test_init(argc, argv);
	if (mkdir("d", 0755) && errno != EEXIST)
		fail("mkdir");
	fd = open("d/f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "x", 1) != 1)
		fail("d/f");
	close(fd);
	fd_file = open("d/f", O_PATH);
	fd_dir = open("d", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if ((symlink("f", "d/ln") && errno != EEXIST))
		fail("symlink");
	fd_link = open("d/ln", O_PATH | O_NOFOLLOW);
	if (fd_file < 0 || fd_dir < 0 || fd_link < 0)
		fail("open(O_PATH)");
	if (fstat(fd_file, &st_file) || fstat(fd_dir, &st_dir) || fstat(fd_link, &st_link))
		fail("fstat");
	fcntl_link = fcntl(fd_link, F_GETFL);
	test_check_around_cr(check_state);
	test_result();
	return 0;
}
