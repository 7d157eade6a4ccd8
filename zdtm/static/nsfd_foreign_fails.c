/*
 * nsfd_foreign_fails: an fd of a UTS namespace the process no longer lives in (opened,
 * then unshare(CLONE_NEWUTS)): refcr cannot make that namespace again, so the dump is
 * refused naming it (crfail) and the fd still names the old namespace afterwards.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat before, now, self;
	int fd;

	test_init(argc, argv);
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"a uts namespace the process does not live in\"}]}");
	fd = open("/proc/self/ns/uts", O_RDONLY);
	if (fd < 0 || fstat(fd, &before) || unshare(CLONE_NEWUTS))
		fail("open/unshare");

	test_daemon();
	test_waitsig();

	if (fstat(fd, &now) || now.st_ino != before.st_ino)
		pr_err("the fd changed");
	if (stat("/proc/self/ns/uts", &self) || self.st_ino == before.st_ino)
		pr_err("the process is back in the old namespace");
	test_result();
	return 0;
}
