/*
 * root_deleted00: processes whose root directory was removed after they
 * chroot'ed into it (issue 14: "a deleted root of a task" was refused).
 *
 * Child 0 chroots into "jail", chdirs to "/" and removes jail through an
 * fd of the test directory it opened before (the only way out of a chroot).
 * Child 1 chroots into "jail2" but keeps its cwd outside it (the test
 * directory: chroot does not move the cwd) and removes jail2 by a path
 * relative to that cwd; it also keeps an fd of its removed root.
 *
 * After restore, in each: "/" is a directory without links, "/.." is "/"
 * (the root of a chroot), nothing can be made in it (ENOENT); child 0's
 * cwd is its root, child 1's cwd is still the test directory (the same
 * inode as before) and its fd of the root is the same inode as "/".  The
 * harness compares each process's root and cwd links.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static int same(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static void check_root(int kid)
{
	struct stat root, up;

	if (stat("/", &root) || stat("/..", &up))
		pr_err("child %d: stat of its root: %m", kid);
	else if (!S_ISDIR(root.st_mode) || root.st_nlink != 0)
		pr_err("child %d: its root has mode %o and %lu links (a removed directory has 0)",
		       kid, root.st_mode, (unsigned long)root.st_nlink);
	else if (!same(&root, &up))
		pr_err("child %d: \"/..\" is not \"/\": it is not chroot'ed", kid);
	if (mkdir("/made", 0700) == 0 || errno != ENOENT)
		pr_err("child %d: mkdir in its removed root did not fail with ENOENT", kid);
}

static void child0(void)
{
	struct stat root, cwd;
	int up = open(".", O_PATH | O_DIRECTORY);

	if (up < 0 || chroot("jail") || chdir("/") || unlinkat(up, "jail", AT_REMOVEDIR) || close(up))
		fail("child 0: chroot into jail and remove it");
	test_child_ready();
	test_waitsig();
	check_root(0);
	if (stat("/", &root) || stat(".", &cwd) || !same(&root, &cwd))
		pr_err("child 0: its cwd is not its root any more");
	test_child_exit();
}

static void child1(void)
{
	struct stat before, cwd, root, held;
	int rfd = open("jail2", O_RDONLY | O_DIRECTORY);

	if (rfd < 0 || stat(".", &before) || chroot("jail2") || rmdir("jail2"))
		fail("child 1: chroot into jail2 and remove it");
	test_child_ready();
	test_waitsig();
	check_root(1);
	if (stat(".", &cwd) || !same(&cwd, &before))
		pr_err("child 1: its cwd is not the test directory any more");
	if (stat("/", &root) || fstat(rfd, &held) || !same(&root, &held))
		pr_err("child 1: its fd of the removed root is another inode than \"/\"");
	test_child_exit();
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if ((mkdir("jail", 0755) && errno != EEXIST) || (mkdir("jail2", 0711) && errno != EEXIST))
		fail("mkdir");
	if (test_fork() == 0)
		child0();
	if (test_fork() == 0)
		child1();
	test_daemon();
	test_waitsig();
	test_children_check();
	test_result();
	return 0;
}
