/*
 * mnt_overmount00: mounts hidden under other mounts survive (ns flavor).
 *
 * low: a tmpfs at ov with the file low-file and the directory inner;
 * inner: a tmpfs at ov/inner with the file hidden-file; top: a tmpfs
 * mounted at ov over low, hiding both (it has top-file).  After restore:
 * two mounts are stacked at ov and inner is still mounted on low's inner
 * directory (mountinfo), top is what ov shows; once top is unmounted, low's
 * and inner's files are there with their data (they were dumped while
 * hidden).
 */
#include "zdtmtst.h"
#include "zmnt.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *path, unsigned int seed)
{
	char buf[512];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	datagen(buf, sizeof(buf), seed);
	if (fd < 0 || test_write_all(fd, buf, sizeof(buf)) != sizeof(buf) || close(fd))
		fail("write %s", path);
}

static int has(const char *path, unsigned int seed)
{
	char buf[512];
	int fd = open(path, O_RDONLY);
	int ok = fd >= 0 && test_read_all(fd, buf, sizeof(buf)) == sizeof(buf) && datachk(buf, sizeof(buf), seed) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static void check_mounts(const char *when)
{
	struct zmnt top, inner, low;

	if (zmnt_count(zmnt_abs(0, "ov")) != 2)
		pr_err("%s: %d mounts at ov, expected 2", when, zmnt_count(zmnt_abs(0, "ov")));
	if (zmnt_find(zmnt_abs(0, "ov"), &top) || zmnt_find(zmnt_abs(0, "ov/inner"), &inner))
		return;
	if (strcmp(top.source, "zdtm-top") || zmnt_by_id(top.parent, &low) || strcmp(low.source, "zdtm-low"))
		pr_err("%s: ov is %s on %d, not zdtm-top over zdtm-low", when, top.source, top.parent);
	else if (inner.parent != low.id || strcmp(inner.source, "zdtm-inner"))
		pr_err("%s: ov/inner is %s on %d, not zdtm-inner on low (%d)", when, inner.source, inner.parent,
		       low.id);
	if (!has("ov/top-file", 3) || access("ov/low-file", F_OK) == 0)
		pr_err("%s: ov does not show top", when);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	zmnt_mount("zdtm-low", zmnt_abs(0, "ov"), "tmpfs", 0, "size=1m");
	put("ov/low-file", 1);
	zmnt_mount("zdtm-inner", zmnt_abs(0, "ov/inner"), "tmpfs", 0, "size=1m");
	put("ov/inner/hidden-file", 2);
	zmnt_mount("zdtm-top", zmnt_abs(0, "ov"), "tmpfs", MS_NOSUID, "size=1m");
	put("ov/top-file", 3);
	check_mounts("before");
	if (test_errors)
		fail("set-up");

	test_daemon();
	test_waitsig();

	check_mounts("after restore");
	if (umount2("ov", 0))
		pr_err("cannot unmount top");
	else if (!has("ov/low-file", 1) || !has("ov/inner/hidden-file", 2))
		pr_err("the hidden files are not back under top");
	test_result();
	return 0;
}
