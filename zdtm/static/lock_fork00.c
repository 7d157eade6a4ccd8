/*
 * lock_fork00: locks come back held by their real owner when a parent
 * shares the locked descriptions with its children (--file-locks).
 *
 * Before forking, the root opens three files and takes a POSIX write lock
 * on bytes 0-9 of the first, an OFD write lock on bytes 0-9 of the second
 * and an exclusive flock on the third.  Two children inherit all three
 * descriptions; child 0 takes a POSIX write lock of its own on bytes
 * 100-109 of the first file (through the shared description) and child 1
 * an exclusive flock on a fourth file opened by the root before the fork
 * (so the flock's pid is the child's).  After fork the root opens a fifth
 * file read-only and takes a read lease on it.  After restore a new probe
 * process (own descriptions) finds: 0-9 of the first locked by the root,
 * 100-109 by child 0, 0-9 of the second by an OFD lock (pid -1), the third
 * and fourth not lockable; the root still has its read lease; each child
 * can still unlock and relock what it holds.  The harness compares every
 * fd's lock lines (kind, access, owner, range) before and after.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int fds[5];
static const char *names[5] = { "lf.posix", "lf.ofd", "lf.flock", "lf.kidflock", "lf.lease" };

static int getlk(int fd, off_t start, struct flock *out)
{
	memset(out, 0, sizeof(*out));
	out->l_type = F_RDLCK;
	out->l_whence = SEEK_SET;
	out->l_start = start;
	out->l_len = 1;
	return fcntl(fd, F_GETLK, out);
}

static void lock(int fd, int cmd, off_t start, off_t len)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, cmd, &fl))
		fail("lock %ld+%ld", (long)start, (long)len);
}

/* In a fresh process: bit set per lock that is not as expected. */
static int probe(pid_t root, pid_t kid0)
{
	int f[4], i, bad = 0;
	struct flock fl;

	for (i = 0; i < 4; i++)
		if ((f[i] = open(names[i], O_RDONLY)) < 0)
			return 100;
	if (getlk(f[0], 5, &fl) || fl.l_type != F_WRLCK || fl.l_pid != root)
		bad |= 1;
	if (getlk(f[0], 105, &fl) || fl.l_type != F_WRLCK || fl.l_pid != kid0)
		bad |= 2;
	if (getlk(f[0], 50, &fl) || fl.l_type != F_UNLCK)
		bad |= 4;
	if (getlk(f[1], 5, &fl) || fl.l_type != F_WRLCK || fl.l_pid != -1)
		bad |= 8;
	if (flock(f[2], LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		bad |= 16;
	if (flock(f[3], LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		bad |= 32;
	return bad;
}

int main(int argc, char **argv)
{
	int i, status;
	pid_t kid0 = 0, pid;

	test_init(argc, argv);

	for (i = 0; i < 4; i++)
		if ((fds[i] = open(names[i], O_RDWR | O_CREAT, 0600)) < 0)
			fail("open %s", names[i]);
	lock(fds[0], F_SETLK, 0, 10);
	lock(fds[1], F_OFD_SETLK, 0, 10);
	if (flock(fds[2], LOCK_EX | LOCK_NB))
		fail("flock");
	for (i = 0; i < 2; i++) {
		pid = test_fork();
		if (pid == 0) {
			if (i == 0)
				lock(fds[0], F_SETLK, 100, 10);
			else if (flock(fds[3], LOCK_EX | LOCK_NB))
				fail("flock in the child");
			test_child_ready();
			test_waitsig();
			if (i == 0) {
				struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET,
						    .l_start = 100, .l_len = 10 };

				if (fcntl(fds[0], F_SETLK, &fl))
					pr_err("child 0 cannot unlock its POSIX lock");
				lock(fds[0], F_SETLK, 100, 10);
			} else if (flock(fds[3], LOCK_SH | LOCK_NB))
				pr_err("child 1 cannot convert its flock");
			test_child_exit();
		}
		if (i == 0)
			kid0 = pid;
	}
	if ((fds[4] = open(names[4], O_RDONLY | O_CREAT, 0600)) < 0)
		fail("open %s", names[4]);
	if (fcntl(fds[4], F_SETLEASE, F_RDLCK))
		fail("F_SETLEASE");

	test_daemon();
	test_waitsig();

	if (fcntl(fds[4], F_GETLEASE) != F_RDLCK)
		pr_err("the read lease is gone (F_GETLEASE %d)", fcntl(fds[4], F_GETLEASE));
	pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0)
		_exit(probe(getpid() == 1 ? 1 : getppid(), kid0));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		fail("waitpid");
	status = WEXITSTATUS(status);
	if (status == 100)
		pr_err("the probe could not open the files");
	else {
		if (status & 1)
			pr_err("bytes 0-9 of %s are not locked by the root", names[0]);
		if (status & 2)
			pr_err("bytes 100-109 of %s are not locked by child 0", names[0]);
		if (status & 4)
			pr_err("a lock appeared on byte 50 of %s", names[0]);
		if (status & 8)
			pr_err("the OFD lock is gone");
		if (status & 16)
			pr_err("the root's flock is gone");
		if (status & 32)
			pr_err("child 1's flock is gone");
	}
	test_children_check();
	test_result();
	return 0;
}
