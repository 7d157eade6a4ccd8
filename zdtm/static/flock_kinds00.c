/*
 * flock_kinds00: locks on files that are not regular files survive (with
 * --file-locks): they were lost without a word (issue 15).
 *
 * An exclusive flock on a FIFO (its description shared with a child, so the
 * parent is the owner in fdinfo), a shared flock on a pipe's read end and a
 * POSIX write lock on its write end, an OFD write lock on 10 bytes of
 * /dev/null (at a random offset: other tests may lock /dev/null too), an exclusive flock on a socket and a shared one on an eventfd.
 * After restore a new process, with descriptions of its own (FIFO and
 * /dev/null opened by path, the pipe through /proc/self/fd), runs into
 * every lock it can reach, and not beyond its range; the socket's and the
 * eventfd's are in the fdinfo.  The harness compares every fdinfo lock line.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIFO "flock_kinds00.fifo"

static int pfd[2], fifo, null, sk[2], efd;
static off_t at;		/* where the OFD lock on /dev/null is: its inode is the host's,
				 * shared with any other test running at the same time */

static int range_lock(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, cmd, &fl);
}

static int reopen(int fd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, flags);
}

/* in a new process: every lock is in the way; bit set = a lock was not */
static int probe(void)
{
	int f = open(FIFO, O_RDWR | O_NONBLOCK), n = open("/dev/null", O_RDWR);
	int r = reopen(pfd[0], O_RDONLY | O_NONBLOCK), w = reopen(pfd[1], O_WRONLY | O_NONBLOCK);
	int bad = 0;

	if (f < 0 || n < 0 || r < 0 || w < 0)
		return 100;
	if (flock(f, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		bad |= 1;
	if (flock(r, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		bad |= 2;
	if (flock(r, LOCK_SH | LOCK_NB))
		bad |= 4;
	if (range_lock(w, F_SETLK, F_WRLCK, 0, 0) == 0 || (errno != EAGAIN && errno != EACCES))
		bad |= 8;
	if (range_lock(n, F_OFD_SETLK, F_WRLCK, at + 5, 1) == 0 || errno != EAGAIN)
		bad |= 16;
	if (range_lock(n, F_OFD_SETLK, F_WRLCK, at + 10, 10))
		bad |= 32;
	return bad;
}

static const char *why[] = { "the FIFO's flock", "the pipe's shared flock (exclusive)",
			     "the pipe's shared flock (shared too)", "the pipe's POSIX lock",
			     "the OFD lock of /dev/null", "the range beside the OFD lock" };

int main(int argc, char **argv)
{
	int status, gate[2], i;
	char *uuid;
	pid_t child, pid;
	char c;

	test_init(argc, argv);

	if (test_read_file("/proc/sys/kernel/random/uuid", &uuid) < 0)
		fail("uuid");
	at = (off_t)(strtoull(uuid, NULL, 16) & 0xffffffffULL) * 32;
	free(uuid);
	if (mkfifo(FIFO, 0600) && errno != EEXIST)
		fail("mkfifo");
	fifo = open(FIFO, O_RDWR);
	null = open("/dev/null", O_RDWR);
	efd = eventfd(0, 0);
	if (fifo < 0 || null < 0 || efd < 0 || pipe(pfd) || pipe(gate) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sk))
		fail("open");
	if (flock(fifo, LOCK_EX) || flock(pfd[0], LOCK_SH) || range_lock(pfd[1], F_SETLK, F_WRLCK, 0, 0) ||
	    range_lock(null, F_OFD_SETLK, F_WRLCK, at, 10) || flock(sk[0], LOCK_EX) || flock(efd, LOCK_SH))
		fail("lock");
	child = fork();		/* shares the FIFO's description: the flock stays the parent's */
	if (child < 0)
		fail("fork");
	if (child == 0) {
		close(gate[1]);
		_exit(read(gate[0], &c, 1) == 0 ? 0 : 1);
	}
	close(gate[0]);

	test_daemon();
	test_waitsig();

	if (!test_fdinfo_has(sk[0], "FLOCK  ADVISORY  WRITE"))
		pr_err("no exclusive flock on the socket in the fdinfo");
	if (!test_fdinfo_has(efd, "FLOCK  ADVISORY  READ"))
		pr_err("no shared flock on the eventfd in the fdinfo");
	pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0)
		_exit(probe());
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		fail("waitpid");
	if (WEXITSTATUS(status) == 100)
		pr_err("the probe could not open the files");
	else
		for (i = 0; i < 6; i++)
			if (WEXITSTATUS(status) & (1 << i))
				pr_err("lost: %s", why[i]);
	close(gate[1]);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		pr_err("the child sharing the FIFO did not end well");
	unlink(FIFO);

	test_result();
	return 0;
}
