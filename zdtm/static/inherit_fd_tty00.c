/*
 * inherit_fd_tty00: the task holds a terminal that is not its own: the slave
 * of a pty whose master the peer pty_giver keeps (passed over a unix socket).
 * It sets O_NONBLOCK on it, says "before" and reads the peer's "one".  The
 * dump gets --external tty[RDEV:DEV] for it (cr-opts.json "dump"); at restore
 * the harness makes a NEW pty pair, hands its slave in with --inherit-fd
 * fd[N]:tty[RDEV:DEV] and its master to the peer (cr-opts.json "inherit",
 * master_to).  Refused first: a dump without the option (the message names
 * it), one naming a terminal the tree does not hold, a malformed one, and a
 * restore without --inherit-fd.
 *
 * After restore the same fd number is a terminal, another one than before
 * (rdev), with the same flags (O_NONBLOCK), and talks to the peer through the
 * new master: "after" out, "two" back.  The peer checks that nobody holds the
 * old terminal any more.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Say line on the terminal fd (O_NONBLOCK) and read the answer (one line,
 * within 10 s); 0 if it is want, else -1 with pr_err(). */
static int talk(int fd, const char *line, const char *want)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[64];
	ssize_t n;

	if (test_write_all(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
		pr_err("write '%s' to the terminal", line);
		return -1;
	}
	if (poll(&p, 1, 10000) != 1) {
		pr_err("no answer to '%s' within 10 s", line);
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, n)) {
		pr_err("answer to '%s': %zd bytes '%.*s', expected '%s'", line, n, (int)(n > 0 ? n : 0), buf, want);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct stat st, now;
	char name[64];
	int sk, fd, flags;

	test_init(argc, argv);
	sk = test_unix_connect("peer.sock", SOCK_STREAM, NULL);
	fd = test_recv_fd(sk);
	close(sk);
	if (!isatty(fd) || fstat(fd, &st))
		fail("fd %d from the peer is not a terminal", fd);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		fail("O_NONBLOCK");
	flags = fcntl(fd, F_GETFL);
	if (talk(fd, "before\n", "one\n"))
		fail("the peer did not answer on its terminal");
	snprintf(name, sizeof(name), "tty[%lx:%lx]", (unsigned long)st.st_rdev, (unsigned long)st.st_dev);
	test_write_text("cr-opts.json",
			"{\"dump\": [\"--external\", \"%1$s\"],\n"
			" \"inherit\": [{\"resource\": \"%1$s\", \"master_to\": \"peer.sock\"}],\n"
			" \"refuse\": [\n"
			"  {\"step\": \"dump\", \"opts\": [], \"says\": \"dump with --external %1$s\"},\n"
			"  {\"step\": \"dump\", \"opts\": [\"--external\", \"%1$s\", \"--external\", \"tty[1:2]\"], "
			"\"says\": \"--external tty[1:2]: the tree holds no terminal\"},\n"
			"  {\"step\": \"dump\", \"opts\": [\"--external\", \"tty[88]\"], \"says\": \"--external tty[88]:\"},\n"
			"  {\"step\": \"restore\", \"opts\": [], \"says\": \"restore with --inherit-fd fd[N]:%1$s\"}]}\n",
			name);

	test_daemon();
	test_waitsig();

	if (!isatty(fd) || fstat(fd, &now))
		pr_err("fd %d is no longer a terminal", fd);
	else if (now.st_rdev == st.st_rdev && now.st_dev == st.st_dev)
		pr_err("fd %d is still the terminal %lx:%lx, not the one handed in", fd,
		       (unsigned long)st.st_rdev, (unsigned long)st.st_dev);
	if (fcntl(fd, F_GETFL) != flags)
		pr_err("flags %#x, expected %#x", fcntl(fd, F_GETFL), flags);
	talk(fd, "after\n", "two\n");
	test_result();
	return 0;
}
