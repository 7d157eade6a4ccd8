/*
 * The body of the external-mount scenarios (mnt_ext_option00,
 * mnt_ext_plugin00, mnt_ext_unmapped_error), which differ in how refcr is
 * told about the mount (EXT_MODE).  ns flavor; the .desc's 'outer_mnt'
 * gives a tmpfs at ext-src that stands for the host's file system (the
 * harness mounts it in a private outer mount namespace that refcr runs in).
 *
 * The LXC console case: the test writes ext-src/console, binds it on the
 * file console of the work dir (standing for the container's /dev/console,
 * which this machine's /dev may not have) and unmounts ext-src in its own
 * namespace, so the bind's source is outside its visible tree (refcr still
 * sees it).  After restore: console is again a bind of that file
 * (mountinfo: tmpfs zdtm-ext, root /console), reads its data, and a write
 * through it is kept.
 */
#include "zdtmtst.h"
#include "zmnt.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXT_OPTION 1
#define EXT_PLUGIN 2
#define EXT_UNMAPPED 3

static void check_console(const char *when, unsigned int seed)
{
	struct zmnt m;
	struct stat st;

	if (zmnt_find(zmnt_abs(1, "console"), &m) == 0 &&
	    (strcmp(m.fstype, "tmpfs") || strcmp(m.source, "zdtm-ext") || strcmp(m.root, "/console")))
		pr_err("%s: console is %s %s root %s", when, m.fstype, m.source, m.root);
	if (stat("console", &st) || !S_ISREG(st.st_mode))
		pr_err("%s: console is not the regular file bound there", when);
	if (!zmnt_has_data("console", 256, seed))
		pr_err("%s: console does not have its data", when);
	if (zmnt_count(zmnt_abs(0, "ext-src")))
		pr_err("%s: ext-src is mounted in the test's namespace", when);
}

static void write_cr_opts(void)
{
	const char *src = zmnt_abs(0, "ext-src/console");
	FILE *f;

	if (EXT_MODE == EXT_PLUGIN)
		return;
	f = fopen("cr-opts.json", "w");
	if (!f)
		fail("cr-opts.json");
	fprintf(f, "{\"dump\": [\"--external\", \"mnt[%s]:console\"], "
		   "\"restore\": [\"--external\", \"mnt[console]:%s\"]", zmnt_abs(1, "console"), src);
	if (EXT_MODE == EXT_UNMAPPED)
		fprintf(f, ", \"refuse\": ["
			   "{\"step\": \"dump\", \"opts\": [\"--external\", \"mnt[/nonexistent]:k\"], "
			   "\"says\": \"mnt[/nonexistent]\"}, "
			   "{\"step\": \"restore\", \"opts\": [], \"says\": \"mnt[console]\"}, "
			   "{\"step\": \"restore\", \"opts\": [\"--external\", \"mnt[console]:%s\", "
			   "\"--external\", \"mnt[nosuch]:/tmp\"], \"says\": \"mnt[nosuch]\"}]",
			src);
	fprintf(f, "}\n");
	if (fclose(f))
		fail("cr-opts.json");
}

int main(int argc, char **argv)
{
	struct zmnt m;
	char buf[256];
	int fd;

	test_init(argc, argv);
	if (zmnt_find(zmnt_abs(0, "ext-src"), &m) || strcmp(m.source, "zdtm-ext"))
		fail("no zdtm-ext tmpfs at ext-src (the .desc's outer_mnt)");
	zmnt_put("ext-src/console", 256, 5);
	zmnt_put("console", 0, 0);
	zmnt_mount(zmnt_abs(0, "ext-src/console"), zmnt_abs(1, "console"), NULL, MS_BIND, NULL);
	if (umount2("ext-src", MNT_DETACH))
		fail("umount ext-src");
	write_cr_opts();
	check_console("before", 5);
	if (test_errors)
		fail("set-up");

	test_daemon();
	test_waitsig();

	check_console("after restore", 5);
	datagen(buf, sizeof(buf), 6);
	fd = open("console", O_WRONLY);
	if (fd < 0 || test_write_all(fd, buf, sizeof(buf)) != sizeof(buf) || close(fd))
		pr_err("cannot write console");
	else if (!zmnt_has_data("console", sizeof(buf), 6))
		pr_err("a write to console is not kept");
	test_result();
	return 0;
}
