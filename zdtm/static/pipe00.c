/*
 * pipe00: a pipe with queued data survives.
 *
 * Both ends are held; the pipe has a non-default capacity (F_SETPIPE_SZ) and
 * holds a pattern written in several chunks (so it spans several pipe
 * buffers).  After restore: the same inode on both ends, the same capacity,
 * FIONREAD counts the same bytes, reading gets exactly the pattern and then
 * EAGAIN (nothing more), and the pipe still carries new data.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define CAP	(256 * 1024)
#define DATA	(100 * 1024 + 77)

int main(int argc, char **argv)
{
	struct stat r_b, w_b, r_a, w_a;
	int p[2], cap_b, cap_a, nread, fl;
	size_t done;
	char *buf;
	ssize_t n;

	test_init(argc, argv);

	buf = malloc(DATA + 4096);
	if (!buf)
		fail("malloc");
	if (pipe(p))
		fail("pipe");
	if (fcntl(p[1], F_SETPIPE_SZ, CAP) < 0)
		fail("F_SETPIPE_SZ");
	cap_b = fcntl(p[1], F_GETPIPE_SZ);

	datagen(buf, DATA, 42);
	for (done = 0; done < DATA; done += n) {
		size_t chunk = done % 3 ? 1000 : 4096 + 13;

		if (chunk > DATA - done)
			chunk = DATA - done;
		n = write(p[1], buf + done, chunk);
		if (n <= 0)
			fail("write to the pipe");
	}
	if (fstat(p[0], &r_b) || fstat(p[1], &w_b))
		fail("fstat");

	test_daemon();
	test_waitsig();

	if (fstat(p[0], &r_a) || fstat(p[1], &w_a))
		fail("fstat");
	if (!S_ISFIFO(r_a.st_mode) || !S_ISFIFO(w_a.st_mode))
		pr_err("the ends are not pipes any more");
	if (r_a.st_ino != w_a.st_ino)
		pr_err("the two ends are different pipes: %lu, %lu",
		       (unsigned long)r_a.st_ino, (unsigned long)w_a.st_ino);
	if ((fcntl(p[0], F_GETFL) & O_ACCMODE) != O_RDONLY ||
	    (fcntl(p[1], F_GETFL) & O_ACCMODE) != O_WRONLY)
		pr_err("access modes of the ends changed");
	cap_a = fcntl(p[1], F_GETPIPE_SZ);
	if (cap_a != cap_b)
		pr_err("pipe capacity %d -> %d", cap_b, cap_a);
	if (ioctl(p[0], FIONREAD, &nread) || nread != DATA)
		pr_err("FIONREAD: %d bytes queued, expected %d", nread, DATA);

	fl = fcntl(p[0], F_GETFL);
	fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
	memset(buf, 0, DATA + 4096);
	for (done = 0; done < DATA + 4096; done += n) {
		n = read(p[0], buf + done, DATA + 4096 - done);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			break;
	}
	if (done != DATA)
		pr_err("read %zu bytes from the pipe, expected %d", done, DATA);
	if (datachk(buf, done < DATA ? done : DATA, 42))
		pr_err("pipe data mismatch at offset %zd",
		       datachk_off(buf, done < DATA ? done : DATA, 42));

	/* Still a working pipe. */
	datagen(buf, 5000, 43);
	if (write(p[1], buf, 5000) != 5000)
		pr_err("write after restore");
	memset(buf, 0, 5000);
	if (test_read_all(p[0], buf, 5000) != 5000 || datachk(buf, 5000, 43))
		pr_err("new data through the pipe");
	close(p[1]);
	fcntl(p[0], F_SETFL, fl);
	if (read(p[0], buf, 1) != 0)
		pr_err("no EOF after closing the write end");

	test_result();
	return 0;
}
