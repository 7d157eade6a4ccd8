/*
 * file_offset00: file offsets survive.
 *
 * A file in cwd opened three times: read-only with the offset in the
 * middle, read-write with the offset past EOF (a hole would follow a
 * write), and a dup() sharing the first description.  After restore each
 * read/write continues at the right place, and the dup still shares the
 * offset with the original (one open file description, not two).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <unistd.h>

#define SIZE	(64 * 1024)
#define OFF1	12345
#define OFF2	(SIZE + 5000)

int main(int argc, char **argv)
{
	int fd, fd_rw, fd_dup, wfd;
	char *buf;
	off_t o;

	test_init(argc, argv);

	buf = malloc(SIZE);
	if (!buf)
		fail("malloc");
	datagen(buf, SIZE, 7);
	wfd = open("file_offset00.data", O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (wfd < 0 || test_write_all(wfd, buf, SIZE) != SIZE || close(wfd))
		fail("create the data file");

	fd = open("file_offset00.data", O_RDONLY);
	fd_rw = open("file_offset00.data", O_RDWR);
	if (fd < 0 || fd_rw < 0)
		fail("open");
	if (read(fd, buf, OFF1) != OFF1)
		fail("read");
	fd_dup = dup(fd);
	if (fd_dup < 0)
		fail("dup");
	if (lseek(fd_rw, OFF2, SEEK_SET) != OFF2)
		fail("lseek");

	test_daemon();
	test_waitsig();

	if ((o = lseek(fd, 0, SEEK_CUR)) != OFF1)
		pr_err("offset of fd %d: %lld, expected %d", fd, (long long)o, OFF1);
	if ((o = lseek(fd_dup, 0, SEEK_CUR)) != OFF1)
		pr_err("offset of the dup: %lld, expected %d", (long long)o, OFF1);
	if ((o = lseek(fd_rw, 0, SEEK_CUR)) != OFF2)
		pr_err("offset of the rw fd: %lld, expected %d", (long long)o, OFF2);

	/* Reading continues where it was. */
	if (read(fd, buf, 1000) != 1000 || datachk_at(buf, 1000, 7, OFF1))
		pr_err("read after restore does not continue at %d", OFF1);
	/* The dup shares the offset. */
	if (read(fd_dup, buf, 1000) != 1000 || datachk_at(buf, 1000, 7, OFF1 + 1000))
		pr_err("the dup does not share the file offset");
	if ((o = lseek(fd, 0, SEEK_CUR)) != OFF1 + 2000)
		pr_err("offset after reading through both: %lld", (long long)o);

	/* Writing at OFF2 leaves a hole. */
	datagen(buf, 100, 8);
	if (write(fd_rw, buf, 100) != 100)
		pr_err("write");
	if ((o = lseek(fd_rw, 0, SEEK_END)) != OFF2 + 100)
		pr_err("file size after write: %lld, expected %d", (long long)o, OFF2 + 100);
	if (pread(fd, buf, 100, OFF2) != 100 || datachk(buf, 100, 8))
		pr_err("data written at the restored offset");
	if (pread(fd, buf, 100, SIZE + 10) != 100)
		pr_err("pread in the hole");
	else {
		int i;

		for (i = 0; i < 100; i++)
			if (buf[i]) {
				pr_err("hole is not zero");
				break;
			}
	}

	test_result();
	return 0;
}
