/*
 * console00: descriptors of /dev/console and of a virtual console (/dev/tty1) come back
 * by reference: the same device, the same flags, still not the controlling terminal.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static void same(int fd, dev_t rdev, int flags, const char *who)
{
	struct stat st;

	if (fstat(fd, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != rdev)
		pr_err("%s: not the same device", who);
	if (fcntl(fd, F_GETFL) != flags)
		pr_err("%s: flags %#x, expected %#x", who, fcntl(fd, F_GETFL), flags);
	if (!isatty(fd))
		pr_err("%s: not a terminal", who);
}

int main(int argc, char **argv)
{
	int con, vt, fcon, fvt, tty;
	struct stat scon, svt;

	test_init(argc, argv);
	con = open("/dev/console", O_WRONLY | O_NOCTTY | O_APPEND);
	vt = open("/dev/tty1", O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (con < 0 || vt < 0 || fstat(con, &scon) || fstat(vt, &svt))
		fail("open");
	fcon = fcntl(con, F_GETFL);
	fvt = fcntl(vt, F_GETFL);

	test_daemon();
	test_waitsig();

	same(con, scon.st_rdev, fcon, "/dev/console");
	same(vt, svt.st_rdev, fvt, "/dev/tty1");
	tty = open("/dev/tty", O_RDONLY | O_NOCTTY);
	if (tty >= 0)
		pr_err("the process has a controlling terminal now");
	test_result();
	return 0;
}
