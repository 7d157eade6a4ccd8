/*
 * mnt_bind_file00: bind mounts of single files survive (ns flavor).
 *
 * A tmpfs at src holds the file f; src/f is bound on the regular file
 * target of the work dir, and a file of the work dir (host2f, the host's
 * file system) on the empty file src/t2 inside the tmpfs.  After restore:
 * mountinfo shows target with root /f of the tmpfs and src/t2 with the host
 * file as root; target is src/f (same inode, a write through one is read
 * through the other), src/t2 reads the host file's data.
 */
#include "zdtmtst.h"
#include "zmnt.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEN 4096

static void check_mounts(const char *when)
{
	struct zmnt t, t2;
	struct stat a, b;
	size_t n;

	if (zmnt_find(zmnt_abs(0, "target"), &t) || zmnt_find(zmnt_abs(0, "src/t2"), &t2))
		return;
	if (strcmp(t.root, "/f") || strcmp(t.fstype, "tmpfs"))
		pr_err("%s: target is %s root %s", when, t.fstype, t.root);
	n = strlen(t2.root);
	if (n < 7 || strcmp(t2.root + n - 7, "/host2f"))
		pr_err("%s: src/t2 has root %s", when, t2.root);
	if (stat("src/f", &a) || stat("target", &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		pr_err("%s: target is not src/f", when);
	if (!S_ISREG(b.st_mode))
		pr_err("%s: target is not a regular file", when);
	if (!zmnt_has_data("target", LEN, 1) || !zmnt_has_data("src/t2", LEN, 2))
		pr_err("%s: data differs", when);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	zmnt_mount("zdtm-bindf", zmnt_abs(0, "src"), "tmpfs", 0, "size=1m");
	zmnt_put("src/f", LEN, 1);
	zmnt_put("src/t2", 0, 0);
	zmnt_put("target", 0, 0);
	zmnt_put("host2f", LEN, 2);
	zmnt_mount(zmnt_abs(0, "src/f"), zmnt_abs(1, "target"), NULL, MS_BIND, NULL);
	zmnt_mount(zmnt_abs(0, "host2f"), zmnt_abs(1, "src/t2"), NULL, MS_BIND, NULL);
	test_check_around_cr(check_mounts);
	zmnt_put("target", LEN, 3);
	if (!zmnt_has_data("src/f", LEN, 3))
		pr_err("a write through target is not in src/f");
	test_result();
	return 0;
}
