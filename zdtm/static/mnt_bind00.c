/*
 * mnt_bind00: bind mounts of directories survive (ns flavor: the test is
 * pid 1 of its own mount namespace and mounts there).
 *
 * A tmpfs at src with src/sub/data; src/sub bound on dst (a bind of part of
 * a file system made inside the namespace); a directory of the work dir
 * (the host's file system) bound on dst2.  After restore: mountinfo shows
 * dst with root /sub of the same tmpfs, dst2 with the host directory as
 * root; dst and src are one superblock (same st_dev, a file written through
 * one is seen through the other), the data is intact, and dst2 still is the
 * host directory (a file written in it appears in the original place).
 */
#include "zdtmtst.h"
#include "zmnt.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEN 8192

static void check_mounts(const char *when)
{
	struct zmnt src, dst, dst2;
	struct stat a, b;

	if (zmnt_find(zmnt_abs(0, "src"), &src) || zmnt_find(zmnt_abs(0, "dst"), &dst) ||
	    zmnt_find(zmnt_abs(0, "dst2"), &dst2))
		return;
	if (strcmp(dst.root, "/sub") || strcmp(dst.fstype, "tmpfs") || strcmp(dst.source, "zdtm-bind00"))
		pr_err("%s: dst is %s %s root %s", when, dst.fstype, dst.source, dst.root);
	if (src.major != dst.major || src.minor != dst.minor)
		pr_err("%s: src and dst are different superblocks", when);
	if (strlen(dst2.root) < 6 || strcmp(dst2.root + strlen(dst2.root) - 6, "/host2"))
		pr_err("%s: dst2 has root %s", when, dst2.root);
	if (stat("src/sub", &a) || stat("dst", &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		pr_err("%s: dst is not src/sub", when);
	if (!zmnt_has_data("dst/data", LEN, 1) || !zmnt_has_data("dst2/data", LEN, 2))
		pr_err("%s: data differs", when);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	zmnt_mount("zdtm-bind00", zmnt_abs(0, "src"), "tmpfs", 0, "size=1m");
	if (mkdir("src/sub", 0755))
		fail("mkdir src/sub");
	zmnt_put("src/sub/data", LEN, 1);
	zmnt_mount(zmnt_abs(0, "src/sub"), zmnt_abs(1, "dst"), NULL, MS_BIND, NULL);
	if (mkdir("host2", 0755))
		fail("mkdir host2");
	zmnt_put("host2/data", LEN, 2);
	zmnt_mount(zmnt_abs(0, "host2"), zmnt_abs(1, "dst2"), NULL, MS_BIND, NULL);
	test_check_around_cr(check_mounts);
	zmnt_put("dst/new", 1, 3);
	if (access("src/sub/new", F_OK))
		pr_err("a file written through dst is not in src/sub");
	zmnt_put("dst2/new", 1, 4);
	if (umount2("dst2", MNT_DETACH) || access("host2/new", F_OK))
		pr_err("a file written through dst2 is not in the host directory");
	test_result();
	return 0;
}
