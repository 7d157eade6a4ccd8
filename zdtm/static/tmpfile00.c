/*
 * tmpfile00: O_TMPFILE files (glibc's tmpfile() among them).
 *
 * A tmpfile() stream with 3 pages of data, its offset in the middle; an
 * O_TMPFILE | O_RDWR | O_NOFOLLOW fd (linkable; O_NOFOLLOW as Python's
 * tempfile opens it, a flag only open() gives) with other data and a
 * sparse tail, and its mode 0604.  After restore: both have their data, size and offset;
 * fcntl(F_GETFL) is as before (the harness compares fdinfo flags too); the
 * linkable one can be given a name with linkat(AT_EMPTY_PATH), which holds
 * its data.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SZ	(3 * 4096 + 17)
#define TAIL	(1 << 20)

static char buf[SZ], got[SZ];

int main(int argc, char **argv)
{
	int t, fl_f, fl_t, fd;
	FILE *f;
	struct stat st;
	char link[64];

	test_init(argc, argv);

	f = tmpfile();
	t = open(".", O_TMPFILE | O_RDWR | O_NOFOLLOW, 0604);
	if (!f || t < 0)
		fail("tmpfile/O_TMPFILE");
	datagen(buf, SZ, 1);
	if (fwrite(buf, 1, SZ, f) != SZ || fflush(f) || fseek(f, 5000, SEEK_SET))
		fail("fwrite");
	datagen(buf, SZ, 2);
	if (pwrite(t, buf, SZ, 0) != SZ || ftruncate(t, TAIL) || fchmod(t, 0604) || lseek(t, 77, SEEK_SET) != 77)
		fail("pwrite");
	fl_f = fcntl(fileno(f), F_GETFL);
	fl_t = fcntl(t, F_GETFL);

	test_daemon();
	test_waitsig();

	if (fcntl(fileno(f), F_GETFL) != fl_f || fcntl(t, F_GETFL) != fl_t)
		pr_err("flags changed: %o/%o, were %o/%o", fcntl(fileno(f), F_GETFL), fcntl(t, F_GETFL), fl_f, fl_t);
	if (ftell(f) != 5000)
		pr_err("the tmpfile() offset is %ld", ftell(f));
	if (pread(fileno(f), got, SZ, 0) != SZ || datachk(got, SZ, 1))
		pr_err("the tmpfile() data changed");
	if (lseek(t, 0, SEEK_CUR) != 77)
		pr_err("the O_TMPFILE offset changed");
	if (fstat(t, &st) || st.st_size != TAIL || (st.st_mode & 07777) != 0604 || st.st_nlink != 0)
		pr_err("the O_TMPFILE file: size %ld mode %o links %ld", (long)st.st_size, st.st_mode,
		       (long)st.st_nlink);
	if (pread(t, got, SZ, 0) != SZ || datachk(got, SZ, 2))
		pr_err("the O_TMPFILE data changed");
	unlink("tmpfile00.named");
	/* through /proc/self/fd: AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH of the initial user namespace (uns) */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", t);
	if (linkat(AT_FDCWD, link, AT_FDCWD, "tmpfile00.named", AT_SYMLINK_FOLLOW))
		pr_err("the O_TMPFILE file cannot be linked (errno %d)", errno);
	else if ((fd = open("tmpfile00.named", O_RDONLY)) < 0 || pread(fd, got, SZ, 0) != SZ ||
		 datachk(got, SZ, 2))
		pr_err("the linked name does not hold the data");
	unlink("tmpfile00.named");

	test_result();
	return 0;
}
