/*
 * fd_cloexec00: close-on-exec is a property of each fd, kept per fd.
 *
 * One file description is reachable through three fds with different
 * FD_CLOEXEC (the opened one has it, a dup() has not, a dup3(O_CLOEXEC) has
 * it); a pipe has close-on-exec on its read end only.  After restore every
 * fd has its old flag and the three file fds still share one offset.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <unistd.h>

static void want(int fd, int cloexec)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		pr_err("fd %d is not open", fd);
	else if (!!(fl & FD_CLOEXEC) != cloexec)
		pr_err("fd %d: FD_CLOEXEC is %s, expected %s", fd, fl & FD_CLOEXEC ? "set" : "clear",
		       cloexec ? "set" : "clear");
}

int main(int argc, char **argv)
{
	int a, b, c, p[2];

	test_init(argc, argv);

	a = open("fd_cloexec00.file", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (a < 0 || write(a, "0123456789", 10) != 10)
		fail("create the file");
	b = dup(a);
	c = dup3(a, 40, O_CLOEXEC);
	if (b < 0 || c != 40)
		fail("dup");
	if (pipe2(p, 0) || fcntl(p[0], F_SETFD, FD_CLOEXEC))
		fail("pipe");
	if (lseek(a, 3, SEEK_SET) != 3)
		fail("lseek");

	test_daemon();
	test_waitsig();

	want(a, 1);
	want(b, 0);
	want(c, 1);
	want(p[0], 1);
	want(p[1], 0);
	if (lseek(b, 5, SEEK_CUR) != 8 || lseek(c, 0, SEEK_CUR) != 8 || lseek(a, 0, SEEK_CUR) != 8)
		pr_err("the three fds do not share one description any more");

	test_result();
	return 0;
}
