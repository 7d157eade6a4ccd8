/*
 * inherit_fd_pipe00: the task reads a pipe whose writer is outside the dumped
 * tree (the peer pipe_giver passes the read end over a unix socket and writes
 * "one" into it).  At restore the caller hands in a pipe of its own with
 * --inherit-fd fd[N]:pipe:[INO] (the harness makes it, queues "two" and closes
 * its write end after the restore: cr-opts.json "inherit").
 *
 * After restore the same fd number reads exactly "two\n" and then EOF, is a
 * different pipe than before, and kept its flags; the peer checks that its own
 * pipe has no reader left (EPIPE).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat st, now;
	char buf[64];
	int sk, fd, flags;
	ssize_t n;

	test_init(argc, argv);
	sk = test_unix_connect("peer.sock", SOCK_STREAM, NULL);
	fd = test_recv_fd(sk);
	close(sk);
	if (test_read_all(fd, buf, 4) != 4 || memcmp(buf, "one\n", 4))
		fail("the peer's line did not arrive");
	if (fstat(fd, &st) || !S_ISFIFO(st.st_mode))
		fail("not a pipe");
	flags = fcntl(fd, F_GETFL);
	test_write_text("cr-opts.json",
			"{\"inherit\": [{\"resource\": \"pipe:[%lu]\", \"data\": \"two\\n\"}]}\n",
			(unsigned long)st.st_ino);

	test_daemon();
	test_waitsig();

	if (fstat(fd, &now) || !S_ISFIFO(now.st_mode))
		pr_err("fd %d is no longer a pipe", fd);
	else if (now.st_ino == st.st_ino)
		pr_err("fd %d is still the pipe %lu, not the one handed in", fd, (unsigned long)st.st_ino);
	if (fcntl(fd, F_GETFL) != flags)
		pr_err("flags %#x, expected %#x", fcntl(fd, F_GETFL), flags);
	n = test_read_all(fd, buf, sizeof(buf));
	if (n != 4 || memcmp(buf, "two\n", 4))
		pr_err("read %zd bytes '%.*s', expected exactly 'two\\n' and EOF", n, (int)(n > 0 ? n : 0), buf);
	test_result();
	return 0;
}
