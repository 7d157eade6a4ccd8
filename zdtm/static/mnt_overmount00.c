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
	if (!zmnt_has_data("ov/top-file", 512, 3) || access("ov/low-file", F_OK) == 0)
		pr_err("%s: ov does not show top", when);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	zmnt_mount("zdtm-low", zmnt_abs(0, "ov"), "tmpfs", 0, "size=1m");
	zmnt_put("ov/low-file", 512, 1);
	zmnt_mount("zdtm-inner", zmnt_abs(0, "ov/inner"), "tmpfs", 0, "size=1m");
	zmnt_put("ov/inner/hidden-file", 512, 2);
	zmnt_mount("zdtm-top", zmnt_abs(0, "ov"), "tmpfs", MS_NOSUID, "size=1m");
	zmnt_put("ov/top-file", 512, 3);
	test_check_around_cr(check_mounts);
	if (umount2("ov", 0))
		pr_err("cannot unmount top");
	else if (!zmnt_has_data("ov/low-file", 512, 1) || !zmnt_has_data("ov/inner/hidden-file", 512, 2))
		pr_err("the hidden files are not back under top");
	test_result();
	return 0;
}
