/*
 * A plugin author's scenario for `refcr plugin-check --scenario` (zdtm style):
 * /dev/kmsg, which refcr leaves to plugins (the "kmsg" test plugin), held open
 * O_RDONLY|O_NONBLOCK with close-on-exec; after restore the fd must be /dev/kmsg
 * again with those flags and still readable without blocking.
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[8192];
	struct stat st;
	ssize_t n;
	int fd;

	test_init(argc, argv);
	fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		fail("open /dev/kmsg");

	test_daemon();
	test_waitsig();

	if (fstat(fd, &st) || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 11)
		pr_err("fd %d is not /dev/kmsg any more", fd);
	if ((fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != (O_RDONLY | O_NONBLOCK))
		pr_err("flags changed: %#x", fcntl(fd, F_GETFL));
	if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
		pr_err("close-on-exec lost");
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && errno != EAGAIN && errno != EPIPE)
		pr_err("read");
	test_result();
	return 0;
}
