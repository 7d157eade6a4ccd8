/*
 * mnt_ro00: read-only and other mount flags survive (ns flavor).
 *
 * rofs: a tmpfs filled, then remounted read-only (superblock and mount);
 * rwfs: a writable tmpfs; robind: a bind of rwfs made ro,nosuid,nodev,
 * noexec,noatime (per-mount flags only).  After restore: mountinfo shows the
 * same per-mount and superblock options; writing into rofs and robind fails
 * with EROFS, into rwfs works and is seen through robind; statvfs flags
 * agree.
 */
#include "zdtmtst.h"
#include "zmnt.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static void check_mounts(const char *when)
{
	struct zmnt ro, rw, rb;
	struct statvfs sv;
	int fd;

	if (zmnt_find(zmnt_abs(0, "rofs"), &ro) || zmnt_find(zmnt_abs(0, "rwfs"), &rw) ||
	    zmnt_find(zmnt_abs(0, "robind"), &rb))
		return;
	if (!zmnt_has(ro.opts, "ro") || !zmnt_has(ro.sopts, "ro"))
		pr_err("%s: rofs is %s / %s", when, ro.opts, ro.sopts);
	if (!zmnt_has(rw.opts, "rw") || !zmnt_has(rw.sopts, "rw"))
		pr_err("%s: rwfs is %s / %s", when, rw.opts, rw.sopts);
	if (strcmp(rb.opts, "ro,nosuid,nodev,noexec,noatime") || !zmnt_has(rb.sopts, "rw"))
		pr_err("%s: robind is %s / %s", when, rb.opts, rb.sopts);
	if (statvfs("robind", &sv) ||
	    (sv.f_flag & (ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_NOATIME)) !=
		    (ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_NOATIME))
		pr_err("%s: statvfs(robind) flags %#lx", when, sv.f_flag);
	fd = open("rofs/new", O_WRONLY | O_CREAT, 0644);
	if (fd >= 0 || errno != EROFS)
		pr_err("%s: creating a file in rofs did not fail with EROFS", when);
	fd = open("robind/new", O_WRONLY | O_CREAT, 0644);
	if (fd >= 0 || errno != EROFS)
		pr_err("%s: creating a file in robind did not fail with EROFS", when);
	if (access("rofs/kept", F_OK))
		pr_err("%s: rofs lost its file", when);
}

int main(int argc, char **argv)
{
	int fd;

	test_init(argc, argv);
	zmnt_mount("zdtm-ro", zmnt_abs(0, "rofs"), "tmpfs", 0, "size=1m");
	close(open("rofs/kept", O_WRONLY | O_CREAT, 0644));
	zmnt_mount(NULL, zmnt_abs(0, "rofs"), NULL, MS_REMOUNT | MS_RDONLY, "size=1m");
	zmnt_mount("zdtm-rw", zmnt_abs(0, "rwfs"), "tmpfs", 0, "size=1m");
	zmnt_mount(zmnt_abs(0, "rwfs"), zmnt_abs(1, "robind"), NULL, MS_BIND, NULL);
	zmnt_mount(NULL, zmnt_abs(0, "robind"), NULL,
		   MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME, NULL);
	test_check_around_cr(check_mounts);
	fd = open("rwfs/new", O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		pr_err("cannot create a file in rwfs");
	else
		close(fd);
	if (access("robind/new", F_OK))
		pr_err("a file made in rwfs is not seen through robind");
	test_result();
	return 0;
}
