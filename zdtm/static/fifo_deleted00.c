/*
 * fifo_deleted00: a FIFO unlinked while open keeps its queue and its ends.
 *
 * The test makes a FIFO with mode 0640, opens a reader and a writer, queues
 * a message, sets the FIFO's times to fixed values and unlinks it.  After
 * restore: the fds are still FIFOs with that mode and those times (the
 * harness also sees "PATH (deleted)" and the open flags), the queued
 * message is read, and what is written then reaches the reader; the name
 * did not come back.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MSG "queued before the dump"

int main(int argc, char **argv)
{
	struct timespec times[2] = { { .tv_sec = 1000000000, .tv_nsec = 5 },
				     { .tv_sec = 1200000000, .tv_nsec = 7 } };
	char buf[64];
	struct stat st;
	int r, w;

	test_init(argc, argv);

	if (mkfifo("fifo_deleted00.fifo", 0640) || chmod("fifo_deleted00.fifo", 0640))
		fail("mkfifo");
	r = open("fifo_deleted00.fifo", O_RDONLY | O_NONBLOCK);
	w = open("fifo_deleted00.fifo", O_WRONLY);
	if (r < 0 || w < 0)
		fail("open");
	if (write(w, MSG, sizeof(MSG)) != sizeof(MSG))
		fail("write");
	if (futimens(w, times) || unlink("fifo_deleted00.fifo"))
		fail("futimens/unlink");

	test_daemon();
	test_waitsig();

	if (fstat(r, &st) || !S_ISFIFO(st.st_mode) || (st.st_mode & 07777) != 0640)
		pr_err("the reader is not a FIFO of mode 0640 (%o)", st.st_mode);
	if (st.st_mtim.tv_sec != times[1].tv_sec)
		pr_err("mtime %ld, expected %ld", (long)st.st_mtim.tv_sec, (long)times[1].tv_sec);
	if (read(r, buf, sizeof(buf)) != sizeof(MSG) || memcmp(buf, MSG, sizeof(MSG)))
		pr_err("the queued message is lost");
	if (write(w, "x", 1) != 1 || read(r, buf, 1) != 1 || buf[0] != 'x')
		pr_err("the ends are not one FIFO");
	if (access("fifo_deleted00.fifo", F_OK) == 0)
		pr_err("the FIFO's name came back");

	test_result();
	return 0;
}
