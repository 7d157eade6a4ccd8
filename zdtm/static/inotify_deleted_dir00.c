/*
 * inotify_deleted_dir00: inotify watches on removed directories that the
 * process still holds.
 *
 * In directory P: d1 (wd 1: IN_OPEN|IN_ATTRIB|IN_CLOSE_NOWRITE|IN_CREATE|
 * IN_DELETE_SELF) is held by an fd, d2 (wd 2: IN_CREATE|IN_ATTRIB|
 * IN_DELETE_SELF) is the process's cwd; both are removed.  A second instance
 * watches P itself (every event, wd 1).  After restore: the watches are on
 * the inodes of the fd and of the cwd (fdinfo), with their masks, and nothing
 * is queued on either instance (refcr's mkdir, opens, chmod, times and rmdir
 * of the ghosts left nothing); creating a file in either directory fails with
 * ENOENT and gives no event; a chmod of each gives IN_ATTRIB|IN_ISDIR on its
 * watch and on P's (a removed directory's dentry keeps its parent and name);
 * closing d1's fd, its last holder, gives IN_CLOSE_NOWRITE|IN_ISDIR,
 * IN_DELETE_SELF and IN_IGNORED on wd 1 (and the close on P's watch); leaving
 * d2 gives IN_DELETE_SELF and IN_IGNORED on wd 2, and both watches are gone
 * from fdinfo.  These are the events an unrestored process gets
 * (run_plain.py).
 */
#include "zdtmtst.h"
#include "znotify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define P	"inotify_deleted_dir00.p"
#define D1_MASK	(IN_OPEN | IN_ATTRIB | IN_CLOSE_NOWRITE | IN_CREATE | IN_DELETE_SELF)
#define D2_MASK	(IN_CREATE | IN_ATTRIB | IN_DELETE_SELF)

/* pr_err()s unless watch wd of ifd is on inode ino with mask (fdinfo) */
static void check_watch(int ifd, int wd, ino_t ino, unsigned long mask, const char *what)
{
	unsigned long i, m;

	if (zin_watch(ifd, wd, &i, &m))
		pr_err("%s: no watch %d", what, wd);
	else if (i != ino || m != mask)
		pr_err("%s: watch %d is on inode %lu mask %#lx, expected inode %lu mask %#lx", what, wd, i, m,
		       (unsigned long)ino, mask);
}

static void check_gone(const char *name, int dirfd)
{
	int fd = openat(dirfd, name, O_CREAT | O_WRONLY, 0600);

	if (fd >= 0 || errno != ENOENT)
		pr_err("creating %s in a removed directory: %d (errno %d), expected ENOENT", name, fd, errno);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	char home[PATH_MAX];
	struct zin_ev ev[16];
	struct stat s1, s2, sp;
	unsigned long ino, mask;
	int a, b, d1;

	test_init(argc, argv);
	if (!getcwd(home, sizeof(home)) || mkdir(P, 0755) || mkdir(P "/d1", 0755) || mkdir(P "/d2", 0755))
		fail("mkdir");
	a = inotify_init1(IN_NONBLOCK);
	b = inotify_init1(IN_NONBLOCK);
	if (a < 0 || b < 0)
		fail("inotify_init1");
	if (inotify_add_watch(a, P "/d1", D1_MASK) != 1 || inotify_add_watch(a, P "/d2", D2_MASK) != 2 ||
	    inotify_add_watch(b, P, IN_ALL_EVENTS) != 1)
		fail("inotify_add_watch");
	d1 = open(P "/d1", O_RDONLY | O_DIRECTORY);
	if (d1 < 0 || stat(P, &sp) || chdir(P "/d2") || rmdir("../d1") || rmdir("../d2"))
		fail("remove the directories");
	zin_read(a, 0, ev, 16);		/* IN_OPEN of d1; P's IN_OPEN and IN_DELETEs */
	zin_read(b, 0, ev, 16);

	test_daemon();
	test_waitsig();

	if (fstat(d1, &s1) || stat(".", &s2) || s1.st_nlink || s2.st_nlink)
		pr_err("the directories are not removed any more");
	check_watch(a, 1, s1.st_ino, D1_MASK, "d1 (fd)");
	check_watch(a, 2, s2.st_ino, D2_MASK, "d2 (cwd)");
	check_watch(b, 1, sp.st_ino, IN_ALL_EVENTS, "P");
	zin_expect(a, "after restore", NULL, 0);
	zin_expect(b, "after restore (P)", NULL, 0);

	check_gone("x", d1);
	check_gone("x", AT_FDCWD);
	zin_expect(a, "create in removed directories", NULL, 0);
	zin_expect(b, "create in removed directories (P)", NULL, 0);

	if (fchmod(d1, 0711) || chmod(".", 0711))
		pr_err("chmod");
	zin_expect(a, "chmod", (struct zin_ev[]){ { 1, IN_ATTRIB | IN_ISDIR, "" },
						  { 2, IN_ATTRIB | IN_ISDIR, "" } }, 2);
	zin_expect(b, "chmod (P)", (struct zin_ev[]){ { 1, IN_ATTRIB | IN_ISDIR, "d1" },
						      { 1, IN_ATTRIB | IN_ISDIR, "d2" } }, 2);

	if (close(d1))
		pr_err("close d1");
	zin_expect(a, "last close of d1", (struct zin_ev[]){ { 1, IN_CLOSE_NOWRITE | IN_ISDIR, "" },
							     { 1, IN_DELETE_SELF, "" }, { 1, IN_IGNORED, "" } }, 3);
	zin_expect(b, "last close of d1 (P)", (struct zin_ev[]){ { 1, IN_CLOSE_NOWRITE | IN_ISDIR, "d1" } }, 1);

	if (chdir(home))
		pr_err("chdir back");
	zin_expect(a, "leaving d2", (struct zin_ev[]){ { 2, IN_DELETE_SELF, "" }, { 2, IN_IGNORED, "" } }, 2);
	zin_expect(b, "leaving d2 (P)", NULL, 0);
	if (!zin_watch(a, 1, &ino, &mask) || !zin_watch(a, 2, &ino, &mask))
		pr_err("a watch outlived its directory");
	test_result();
	return 0;
}
