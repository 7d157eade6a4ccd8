/*
 * shared_fd00: an open file description shared across fork stays shared.
 *
 * The root opens a file and forks; parent and child share the description
 * (one offset, one set of status flags).  The child also opens the same
 * file on its own (a separate description) and dup()s the shared fd.
 * After restore, in turn: the root checks the offset and reads, the child
 * sees the offset moved (also through its dup), reads and sets O_NONBLOCK,
 * the root sees both; the child's own description kept its own offset and
 * flags and was not moved by any of this.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <unistd.h>

#define FSIZE	(64 * 1024)
#define OFF0	1234
#define READ1	1000
#define READ2	777
#define OWNOFF	40000

static int chk_read(int fd, size_t len, size_t off, const char *who)
{
	char b[4096];

	if (test_read_all(fd, b, len) != (ssize_t)len) {
		pr_err("%s: short read", who);
		return -1;
	}
	if (datachk_at(b, len, 9, off)) {
		pr_err("%s: wrong data at offset %zu", who, off);
		return -1;
	}
	return 0;
}

static void check_off(int fd, off_t want, const char *who)
{
	off_t o = lseek(fd, 0, SEEK_CUR);

	if (o != want)
		pr_err("%s: offset %lld, expected %lld", who, (long long)o, (long long)want);
}

int main(int argc, char **argv)
{
	int fd, own, dupfd;
	char *b;
	pid_t pid;

	test_init(argc, argv);

	b = malloc(FSIZE);
	if (!b)
		fail("malloc");
	datagen(b, FSIZE, 9);
	fd = open("shared_fd00.data", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || test_write_all(fd, b, FSIZE) != FSIZE)
		fail("create the file");
	if (lseek(fd, OFF0, SEEK_SET) != OFF0)
		fail("lseek");

	pid = test_fork();
	if (pid == 0) {
		own = open("shared_fd00.data", O_RDONLY);
		if (own < 0 || lseek(own, OWNOFF, SEEK_SET) != OWNOFF)
			fail("child: open/lseek own");
		dupfd = dup(fd);
		if (dupfd < 0)
			fail("dup");
		test_child_ready();
		test_waitsig();

		/* The root has read READ1 bytes before it signalled us. */
		check_off(fd, OFF0 + READ1, "child, shared fd");
		check_off(dupfd, OFF0 + READ1, "child, dup of the shared fd");
		check_off(own, OWNOFF, "child, own description");
		chk_read(dupfd, READ2, OFF0 + READ1, "child read");
		check_off(fd, OFF0 + READ1 + READ2, "child, shared fd after its read");
		if (fcntl(fd, F_SETFL, O_NONBLOCK))
			pr_err("F_SETFL");
		if (fcntl(own, F_GETFL) & O_NONBLOCK)
			pr_err("child: own description got O_NONBLOCK from the shared one");
		chk_read(own, 100, OWNOFF, "child read own");
		test_child_exit();
	}

	test_daemon();
	test_waitsig();

	check_off(fd, OFF0, "root");
	if (fcntl(fd, F_GETFL) & O_NONBLOCK)
		pr_err("root: O_NONBLOCK before the child set it");
	chk_read(fd, READ1, OFF0, "root read");
	test_children_check();
	check_off(fd, OFF0 + READ1 + READ2, "root, after the child read");
	if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
		pr_err("root: O_NONBLOCK set by the child is not seen");
	test_result();
	return 0;
}
