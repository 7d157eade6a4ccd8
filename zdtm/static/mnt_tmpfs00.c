/*
 * mnt_tmpfs00: a tmpfs made inside the namespace comes back with its
 * superblock options and its contents (ns flavor).
 *
 * tmpfs at t with size=2m,mode=0751,uid=1234,gid=5678 holding: a directory
 * (0750, 1001:1002, old mtime), a 100 KiB file in it (0640, 1003:1004, old
 * mtime) and a hard link to it, a setuid file (04755), a sticky directory
 * (01777), a symlink, a FIFO, an empty file with mode 0; an fd of the big
 * file is kept open at offset 4096.  After restore: the options in
 * mountinfo, every type, mode, owner, size, link count, mtime, the data,
 * the link target, and the open fd (offset, same inode as the path).
 * First a dump with --tmpfs-limit 64K is refused (cr-opts.json), the test
 * unchanged.
 */
#include "zdtmtst.h"
#include "zmnt.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define BIG (100 * 1024)
#define OLD1 1000000000
#define OLD2 1234567890

struct want {
	const char *path;
	mode_t mode;	/* with the type bits */
	uid_t uid;
	gid_t gid;
	time_t mtime;	/* 0: not checked */
};

static const struct want files[] = {
	{ "t", S_IFDIR | 0751, 1234, 5678, 0 },
	{ "t/d", S_IFDIR | 0750, 1001, 1002, OLD1 },
	{ "t/d/big", S_IFREG | 0640, 1003, 1004, OLD2 },
	{ "t/d/hard", S_IFREG | 0640, 1003, 1004, OLD2 },
	{ "t/suid", S_IFREG | 04755, 0, 0, 0 },
	{ "t/sticky", S_IFDIR | 01777, 0, 0, 0 },
	{ "t/fifo", S_IFIFO | 0600, 0, 0, 0 },
	{ "t/empty", S_IFREG | 0, 0, 0, 0 },
};

static void set_mtime(const char *path, time_t t)
{
	struct timeval tv[2] = { { t, 0 }, { t, 0 } };

	if (utimes(path, tv))
		fail("utimes %s", path);
}

static void check_tree(const char *when, int fd)
{
	static char buf[BIG];
	struct zmnt m;
	struct stat st, a, b;
	char link[64];
	ssize_t n;
	size_t i;
	int f;

	if (zmnt_find(zmnt_abs(0, "t"), &m) == 0) {
		if (strcmp(m.fstype, "tmpfs") || strcmp(m.source, "zdtm-tmpfs00") || !zmnt_has(m.sopts, "size=2048k") ||
		    !zmnt_has(m.sopts, "mode=751") || !zmnt_has(m.sopts, "uid=1234") || !zmnt_has(m.sopts, "gid=5678"))
			pr_err("%s: the tmpfs is %s %s %s", when, m.fstype, m.source, m.sopts);
	}
	for (i = 0; i < ARRAY_SIZE(files); i++) {
		const struct want *w = &files[i];

		if (lstat(w->path, &st)) {
			pr_err("%s: %s is missing", when, w->path);
			continue;
		}
		if (st.st_mode != w->mode || st.st_uid != w->uid || st.st_gid != w->gid)
			pr_err("%s: %s: mode %o owner %d:%d, expected %o %d:%d", when, w->path, st.st_mode,
			       st.st_uid, st.st_gid, w->mode, w->uid, w->gid);
		if (w->mtime && st.st_mtime != w->mtime)
			pr_err("%s: %s: mtime %ld, expected %ld", when, w->path, (long)st.st_mtime, (long)w->mtime);
	}
	if (stat("t/d/big", &a) || stat("t/d/hard", &b) || a.st_ino != b.st_ino || a.st_nlink != 2 || a.st_size != BIG)
		pr_err("%s: big/hard are not one file of %d bytes with two links", when, BIG);
	f = open("t/d/big", O_RDONLY);
	if (f < 0 || test_read_all(f, buf, BIG) != BIG || datachk(buf, BIG, 7))
		pr_err("%s: the data of t/d/big differs", when);
	if (f >= 0)
		close(f);
	n = readlink("t/link", link, sizeof(link) - 1);
	if (n < 0 || (link[n] = '\0', strcmp(link, "d/big")))
		pr_err("%s: t/link is not a symlink to d/big", when);
	if (fstat(fd, &st) || st.st_ino != a.st_ino || st.st_dev != a.st_dev || lseek(fd, 0, SEEK_CUR) != 4096)
		pr_err("%s: the open fd is not t/d/big at 4096", when);
}

int main(int argc, char **argv)
{
	static char buf[BIG];
	FILE *f;
	int fd;

	test_init(argc, argv);
	zmnt_mount("zdtm-tmpfs00", zmnt_abs(0, "t"), "tmpfs", 0, "size=2m,mode=0751,uid=1234,gid=5678");
	if (mkdir("t/d", 0750) || chown("t/d", 1001, 1002))
		fail("t/d");
	datagen(buf, BIG, 7);
	fd = open("t/d/big", O_RDWR | O_CREAT, 0640);
	if (fd < 0 || test_write_all(fd, buf, BIG) != BIG || fchown(fd, 1003, 1004) || fchmod(fd, 0640))
		fail("t/d/big");
	if (lseek(fd, 4096, SEEK_SET) != 4096 || link("t/d/big", "t/d/hard"))
		fail("t/d/hard");
	close(open("t/suid", O_WRONLY | O_CREAT, 0755));
	if (chmod("t/suid", 04755) || mkdir("t/sticky", 0777) || chmod("t/sticky", 01777))
		fail("t/suid, t/sticky");
	if (symlink("d/big", "t/link") || mkfifo("t/fifo", 0600))
		fail("t/link, t/fifo");
	close(open("t/empty", O_WRONLY | O_CREAT, 0600));
	if (chmod("t/empty", 0))
		fail("t/empty");
	set_mtime("t/d/big", OLD2);
	set_mtime("t/d", OLD1);
	check_tree("before", fd);
	if (test_errors)
		fail("set-up");
	f = fopen("cr-opts.json", "w");
	if (!f || fprintf(f, "{\"refuse\": [{\"step\": \"dump\", \"opts\": [\"--tmpfs-limit\", \"64K\"], "
			     "\"says\": \"--tmpfs-limit\"}]}\n") < 0 || fclose(f))
		fail("cr-opts.json");

	test_daemon();
	test_waitsig();

	check_tree("after restore", fd);
	test_result();
	return 0;
}
