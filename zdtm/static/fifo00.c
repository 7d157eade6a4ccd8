/*
 * fifo00: a named FIFO with queued data survives.
 *
 * The FIFO is made in the work dir and opened three times: a reader
 * (O_NONBLOCK), a writer and an O_RDWR description; the writer queues a
 * pattern.  After restore: all three are the FIFO at the path, with their
 * access modes and O_NONBLOCK as before, FIONREAD counts the queued bytes,
 * the reader gets exactly the pattern, and new data still flows.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA	(20000 + 3)

int main(int argc, char **argv)
{
	int r, w, rw, nread, i, fds[3];
	struct stat st, path_st;
	char *buf;
	size_t done;
	ssize_t n;

	test_init(argc, argv);

	buf = malloc(DATA + 100);
	if (!buf)
		fail("malloc");
	if (mkfifo("fifo00.fifo", 0600))
		fail("mkfifo");
	r = open("fifo00.fifo", O_RDONLY | O_NONBLOCK);
	w = open("fifo00.fifo", O_WRONLY);
	rw = open("fifo00.fifo", O_RDWR);
	if (r < 0 || w < 0 || rw < 0)
		fail("open the fifo");
	datagen(buf, DATA, 7);
	if (test_write_all(w, buf, DATA) != DATA)
		fail("write");

	test_daemon();
	test_waitsig();

	fds[0] = r, fds[1] = w, fds[2] = rw;
	if (stat("fifo00.fifo", &path_st))
		pr_err("the fifo is gone from its path");
	for (i = 0; i < 3; i++) {
		if (fstat(fds[i], &st) || !S_ISFIFO(st.st_mode) || st.st_ino != path_st.st_ino ||
		    st.st_dev != path_st.st_dev)
			pr_err("fd %d is not the fifo at the path", fds[i]);
	}
	if ((fcntl(r, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != (O_RDONLY | O_NONBLOCK))
		pr_err("reader flags %#x", fcntl(r, F_GETFL));
	if ((fcntl(w, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != O_WRONLY)
		pr_err("writer flags %#x", fcntl(w, F_GETFL));
	if ((fcntl(rw, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != O_RDWR)
		pr_err("rdwr flags %#x", fcntl(rw, F_GETFL));
	if (ioctl(r, FIONREAD, &nread) || nread != DATA)
		pr_err("FIONREAD: %d bytes queued, expected %d", nread, DATA);

	memset(buf, 0, DATA + 100);
	for (done = 0; done < DATA + 100; done += n) {
		n = read(r, buf + done, DATA + 100 - done);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			break;
	}
	if (done != DATA)
		pr_err("read %zu bytes, expected %d", done, DATA);
	if (datachk(buf, done < DATA ? done : DATA, 7))
		pr_err("fifo data mismatch");

	datagen(buf, 500, 8);
	if (write(rw, buf, 500) != 500)
		pr_err("write after restore");
	memset(buf, 0, 500);
	if (test_read_all(r, buf, 500) != 500 || datachk(buf, 500, 8))
		pr_err("new data through the fifo");

	test_result();
	return 0;
}
