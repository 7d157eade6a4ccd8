/*
 * ghost_limit00: a deleted file larger than --ghost-limit makes the dump fail.
 *
 * The test holds an unlinked 64 KiB file; the dump runs with
 * --ghost-limit 4K (.desc: crfail) and must refuse; the task runs on with
 * its file intact.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <unistd.h>

#define FSIZE	(64 * 1024)

int main(int argc, char **argv)
{
	static char buf[FSIZE];
	int fd;

	test_init(argc, argv);

	fd = open("ghost_limit00.file", O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		fail("open");
	datagen(buf, FSIZE, 21);
	if (test_write_all(fd, buf, FSIZE) != FSIZE || unlink("ghost_limit00.file"))
		fail("write and unlink");

	test_daemon();
	test_waitsig();

	memset(buf, 0, FSIZE);
	if (pread(fd, buf, FSIZE, 0) != FSIZE || datachk(buf, FSIZE, 21))
		pr_err("the deleted file's contents changed");
	if (lseek(fd, 0, SEEK_CUR) != FSIZE)
		pr_err("offset changed");

	test_result();
	return 0;
}
