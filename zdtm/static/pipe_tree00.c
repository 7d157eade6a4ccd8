/*
 * pipe_tree00: pipes between the processes of a tree, with data queued in
 * them over C/R, keep carrying data in both directions.
 *
 *   down: root -> child        up: child -> root        gdown: child -> grandchild
 *
 * Before the dump every pipe carried a "pre" message that its reader
 * consumed, then got QUEUED bytes that nobody reads until after restore.
 * After SIGTERM: each reader gets exactly its queued bytes, then the writer
 * sends a "post" pattern and closes its end, and the reader sees it and EOF
 * (so no stray copy of a write end survives anywhere in the tree).  Each
 * process holds only the ends it uses.  The queued byte counts (FIONREAD,
 * which works on either end) are checked by each parent before it forwards
 * SIGTERM, i.e. before anyone reads or writes again.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PRE	1000
#define QUEUED	(20 * 1024 + 5)
#define POST	(30 * 1024 + 17)

enum { S_DOWN = 1, S_UP = 2, S_GDOWN = 3 };

static void send_data(int fd, size_t len, uint64_t seed, const char *what)
{
	char *b = malloc(len);

	if (!b)
		fail("malloc");
	datagen(b, len, seed);
	if (test_write_all(fd, b, len) != (ssize_t)len)
		fail("%s: write %zu bytes", what, len);
	free(b);
}

static void recv_data(int fd, size_t len, uint64_t seed, const char *what)
{
	char *b = malloc(len);
	ssize_t n;

	if (!b)
		fail("malloc");
	n = test_read_all(fd, b, len);
	if (n != (ssize_t)len)
		pr_err("%s: read %zd of %zu bytes", what, n, len);
	else if (datachk(b, len, seed))
		pr_err("%s: data differ at offset %zd", what, datachk_off(b, len, seed));
	free(b);
}

static void check_queued(int fd, int want, const char *what)
{
	int n = -1;

	if (ioctl(fd, FIONREAD, &n) || n != want)
		pr_err("%s: %d bytes queued, expected %d", what, n, want);
}

static void recv_eof(int fd, const char *what)
{
	char c;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 0)
		pr_err("%s: no EOF after the data (read returned %zd)", what, n);
}

static void grandchild(int gdown)
{
	recv_data(gdown, PRE, S_GDOWN * 10, "gdown pre");
	test_child_ready();
	test_waitsig();
	recv_data(gdown, QUEUED, S_GDOWN * 10 + 1, "gdown queued");
	recv_data(gdown, POST, S_GDOWN * 10 + 2, "gdown post");
	recv_eof(gdown, "gdown");
	test_child_exit();
}

static void child(int down, int up)
{
	int gd[2];

	if (pipe(gd))
		fail("pipe");
	if (test_fork() == 0) {
		close(down);
		close(up);
		close(gd[1]);
		grandchild(gd[0]);
	}
	close(gd[0]);
	send_data(gd[1], PRE, S_GDOWN * 10, "gdown pre");
	send_data(gd[1], QUEUED, S_GDOWN * 10 + 1, "gdown queued");
	recv_data(down, PRE, S_DOWN * 10, "down pre");
	send_data(up, PRE, S_UP * 10, "up pre");
	send_data(up, QUEUED, S_UP * 10 + 1, "up queued");

	test_child_ready();
	test_waitsig();

	check_queued(gd[1], QUEUED, "gdown");
	test_children_kick(SIGTERM);
	recv_data(down, QUEUED, S_DOWN * 10 + 1, "down queued");
	send_data(gd[1], POST, S_GDOWN * 10 + 2, "gdown post");
	close(gd[1]);
	send_data(up, POST, S_UP * 10 + 2, "up post");
	close(up);
	recv_data(down, POST, S_DOWN * 10 + 2, "down post");
	recv_eof(down, "down");
	test_children_wait();
	test_child_exit();
}

int main(int argc, char **argv)
{
	int down[2], up[2];

	test_init(argc, argv);

	if (pipe(down) || pipe(up))
		fail("pipe");
	if (test_fork() == 0) {
		close(down[1]);
		close(up[0]);
		child(down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);
	send_data(down[1], PRE, S_DOWN * 10, "down pre");
	recv_data(up[0], PRE, S_UP * 10, "up pre");
	send_data(down[1], QUEUED, S_DOWN * 10 + 1, "down queued");
	/* The child's queued bytes follow its pre message: wait for them. */
	test_children_wait_ready();

	test_daemon();
	test_waitsig();

	check_queued(up[0], QUEUED, "up");
	check_queued(down[1], QUEUED, "down");
	test_children_kick(SIGTERM);
	recv_data(up[0], QUEUED, S_UP * 10 + 1, "up queued");
	send_data(down[1], POST, S_DOWN * 10 + 2, "down post");
	close(down[1]);
	recv_data(up[0], POST, S_UP * 10 + 2, "up post");
	recv_eof(up[0], "up");
	test_children_wait();
	test_result();
	return 0;
}
