/*
 * read_blocked00: a task blocked in read() on an empty pipe is checkpointed.
 *
 * It holds both ends of the pipe.  After restore SIGTERM must make read()
 * return -1/EINTR; data, EOF (the write end lost), another error, or EINTR
 * without SIGTERM is a FAIL.  The pipe must still work afterwards.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat a, b;
	char buf[64];
	ssize_t n;
	int p[2], err;

	test_init(argc, argv);

	if (pipe(p))
		fail("pipe");

	test_daemon();
	n = read(p[0], buf, sizeof(buf));
	err = errno;

	if (n > 0)
		fail("read returned %zd bytes from an empty pipe", n);
	if (n == 0)
		fail("read returned EOF: the write end was lost");
	errno = err;
	if (err != EINTR)
		fail("read failed");
	if (!test_sigterm_seen)
		fail("read was interrupted, but not by SIGTERM");

	if (fstat(p[0], &a) || fstat(p[1], &b) || a.st_ino != b.st_ino)
		fail("the pipe ends are not one pipe");
	if (write(p[1], "hello", 5) != 5)
		fail("write");
	if (read(p[0], buf, sizeof(buf)) != 5 || memcmp(buf, "hello", 5))
		fail("the pipe does not carry data");

	pass();
	return 0;
}
