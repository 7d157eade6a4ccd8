/*
 * posix_lock00: fcntl() record locks (POSIX and OFD) survive (--file-locks).
 *
 * The test holds a POSIX write lock on bytes 0-99, a POSIX read lock on
 * 200-299 and an OFD write lock from 1000 to EOF.  After restore a child
 * (with its own description) asks F_GETLK about each range: the write locks
 * conflict (the POSIX one owned by the test's pid, the OFD one by -1), the
 * read lock conflicts with writing only.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static int getlk(int fd, int type, off_t start, off_t len, struct flock *out)
{
	memset(out, 0, sizeof(*out));
	out->l_type = type;
	out->l_whence = SEEK_SET;
	out->l_start = start;
	out->l_len = len;
	return fcntl(fd, F_GETLK, out);
}

static int probe(pid_t owner)
{
	int fd = open("posix_lock00.file", O_RDWR), bad = 0;
	struct flock fl;

	if (fd < 0)
		return 100;
	if (getlk(fd, F_RDLCK, 10, 10, &fl) || fl.l_type != F_WRLCK || fl.l_pid != owner ||
	    fl.l_start != 0 || fl.l_len != 100)
		bad |= 1;
	if (getlk(fd, F_WRLCK, 250, 1, &fl) || fl.l_type != F_RDLCK || fl.l_pid != owner)
		bad |= 2;
	if (getlk(fd, F_RDLCK, 250, 1, &fl) || fl.l_type != F_UNLCK)
		bad |= 4;
	if (getlk(fd, F_RDLCK, 5000, 1, &fl) || fl.l_type != F_WRLCK || fl.l_pid != -1)
		bad |= 8;
	if (getlk(fd, F_WRLCK, 500, 10, &fl) || fl.l_type != F_UNLCK)
		bad |= 16;
	return bad;
}

static void lock(int fd, int cmd, int type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, cmd, &fl))
		fail("lock %ld+%ld", (long)start, (long)len);
}

int main(int argc, char **argv)
{
	int fd, ofd, status;
	pid_t pid;

	test_init(argc, argv);

	fd = open("posix_lock00.file", O_RDWR | O_CREAT, 0600);
	ofd = open("posix_lock00.file", O_RDWR);
	if (fd < 0 || ofd < 0)
		fail("open");
	lock(fd, F_SETLK, F_WRLCK, 0, 100);
	lock(fd, F_SETLK, F_RDLCK, 200, 100);
	lock(ofd, F_OFD_SETLK, F_WRLCK, 1000, 0);

	test_daemon();
	test_waitsig();

	pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0)
		_exit(probe(getppid()));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		fail("waitpid");
	status = WEXITSTATUS(status);
	if (status == 100)
		pr_err("the probe could not open the file");
	else if (status) {
		if (status & 1)
			pr_err("the POSIX write lock on 0-99 is gone or changed");
		if (status & 2)
			pr_err("the POSIX read lock on 200-299 is gone");
		if (status & 4)
			pr_err("the read lock on 200-299 is not shared");
		if (status & 8)
			pr_err("the OFD write lock from 1000 is gone");
		if (status & 16)
			pr_err("a lock appeared on 500-509");
	}

	test_result();
	return 0;
}
