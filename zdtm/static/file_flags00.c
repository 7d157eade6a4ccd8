/*
 * file_flags00: file status flags and fd flags survive.
 *
 * Several fds with mixes of O_APPEND, O_NONBLOCK, O_NOATIME, O_DSYNC,
 * access modes and FD_CLOEXEC; after restore F_GETFL and F_GETFD return the
 * same, and the flags work: O_APPEND writes go to the end, an O_NONBLOCK
 * read of an empty pipe gives EAGAIN, close-on-exec is effective across an
 * execve (checked by a child that execs /bin/sh and tests the fds).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct tfd {
	const char *what;
	int fd;
	int fl, fd_flags;
};

int main(int argc, char **argv)
{
	struct tfd fds[8];
	int n = 0, i, p[2], st;
	struct stat s;
	char cmd[4096];
	size_t l = 0;
	pid_t pid;

#define ADD(w, f) do { fds[n].what = w; fds[n].fd = f; if (f < 0) fail("open %s", w); n++; } while (0)

	test_init(argc, argv);

	ADD("append", open("file_flags00.a", O_CREAT | O_WRONLY | O_APPEND, 0644));
	ADD("append+cloexec+rdwr", open("file_flags00.b", O_CREAT | O_RDWR | O_APPEND | O_CLOEXEC, 0644));
	ADD("rdonly+nonblock+noatime", open("file_flags00.a", O_RDONLY | O_NONBLOCK | O_NOATIME));
	ADD("wronly+cloexec", open("file_flags00.c", O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	if (pipe2(p, O_NONBLOCK))
		fail("pipe2");
	ADD("pipe read nonblock", p[0]);
	ADD("pipe write nonblock", p[1]);
	if (fcntl(p[0], F_SETFD, FD_CLOEXEC))
		fail("F_SETFD");
	ADD("dup of append", fcntl(fds[0].fd, F_DUPFD_CLOEXEC, 100));
	ADD("rdwr+sync", open("file_flags00.c", O_RDWR | O_DSYNC));

	if (write(fds[0].fd, "0123456789", 10) != 10 || write(fds[1].fd, "abc", 3) != 3)
		fail("write");
	lseek(fds[0].fd, 0, SEEK_SET);	/* O_APPEND ignores it for writes */
	lseek(fds[1].fd, 1, SEEK_SET);

	for (i = 0; i < n; i++) {
		fds[i].fl = fcntl(fds[i].fd, F_GETFL);
		fds[i].fd_flags = fcntl(fds[i].fd, F_GETFD);
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < n; i++) {
		int fl = fcntl(fds[i].fd, F_GETFL), fdf = fcntl(fds[i].fd, F_GETFD);

		if (fl != fds[i].fl)
			pr_err("%s (fd %d): F_GETFL %#o -> %#o", fds[i].what, fds[i].fd,
			       fds[i].fl, fl);
		if (fdf != fds[i].fd_flags)
			pr_err("%s (fd %d): F_GETFD %#x -> %#x", fds[i].what, fds[i].fd,
			       fds[i].fd_flags, fdf);
	}

	/* O_APPEND works. */
	if (write(fds[0].fd, "XY", 2) != 2 || write(fds[6].fd, "Z", 1) != 1)
		pr_err("write");
	if (fstat(fds[0].fd, &s) || s.st_size != 13)
		pr_err("O_APPEND: file_flags00.a is %lld bytes, expected 13",
		       (long long)s.st_size);
	if (write(fds[1].fd, "d", 1) != 1 || fstat(fds[1].fd, &s) || s.st_size != 4)
		pr_err("O_APPEND on the rdwr fd");

	/* O_NONBLOCK works. */
	{
		char c;

		if (read(p[0], &c, 1) != -1 || errno != EAGAIN)
			pr_err("O_NONBLOCK read of an empty pipe did not give EAGAIN");
	}

	/* Close-on-exec works: a child execs a shell that probes the fds. */
	l = snprintf(cmd, sizeof(cmd), "r=0;");
	for (i = 0; i < n; i++)
		l += snprintf(cmd + l, sizeof(cmd) - l,
			      "if [ -e /proc/self/fd/%d ]; then o=1; else o=0; fi; "
			      "[ $o = %d ] || r=1;", fds[i].fd,
			      (fds[i].fd_flags & FD_CLOEXEC) ? 0 : 1);
	snprintf(cmd + l, sizeof(cmd) - l, "exit $r");
	pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		fail("waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		pr_err("close-on-exec is not what F_GETFD said (shell status %#x)", st);

	test_result();
	return 0;
}
