/*
 * aio00: aio contexts (io_setup) come back with their ids, ring sizes and
 * the completed events not yet reaped (issue 14).
 *
 * `a` = io_setup(16): one page, 127 events.  Two requests completed, not
 * reaped: a PWRITE of 5 bytes into a pipe and a PREAD of a regular file,
 * each with its own aio_data.  `b` = io_setup(200): four pages, 511 events,
 * gone once round its ring: 509 requests (writes to /dev/null) made and
 * reaped, then 5 more of which one is reaped, so head (510) is past tail (3)
 * and the 4 unreaped events straddle the end of the ring.
 *
 * After restore: the areas at a and b are the same (bounds, name "/[aio]
 * (deleted)", VmFlags), the headers (slot, nr, head, tail) too;
 * io_getevents returns exactly the unreaped events (data, obj, res) and the
 * PREAD's bytes are in its buffer; a new request on each completes and is
 * reaped (the pipe then holds both writes); io_destroy works, after which
 * the ids are gone and so are the areas.
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct ring {			/* struct aio_ring's header (fs/aio.c) */
	unsigned id, nr, head, tail, magic, compat, incompat, header_length;
};

#define FILE_TEXT "what the PREAD read"
#define B_CYCLE 509		/* requests of b made and reaped before the last 5 */

static struct iocb cb_pipe, cb_file, cb_more, cb_null[5];
static char file_buf[64], more_buf[64];
static int pipefd[2], file, devnull;

static long io_getevents_(aio_context_t ctx, long min, long nr, struct io_event *ev, long sec)
{
	struct timespec ts = { sec, 0 };

	return syscall(SYS_io_getevents, ctx, min, nr, ev, &ts);
}

static void prep(struct iocb *cb, int opcode, int fd, void *buf, size_t len, unsigned long long data)
{
	memset(cb, 0, sizeof(*cb));
	cb->aio_lio_opcode = opcode;
	cb->aio_fildes = fd;
	cb->aio_buf = (unsigned long)buf;
	cb->aio_nbytes = len;
	cb->aio_data = data;
}

static void submit(aio_context_t ctx, struct iocb *cb, const char *what)
{
	struct iocb *p = cb;

	if (syscall(SYS_io_submit, ctx, 1, &p) != 1)
		fail("io_submit %s", what);
}

/* b: round its ring once, leave 4 events across its end unreaped */
static void cycle(aio_context_t b)
{
	struct io_event ev[128];
	struct iocb *p = &cb_null[0];
	int done = 0;

	prep(&cb_null[0], IOCB_CMD_PWRITE, devnull, "x", 1, 999);
	while (done < B_CYCLE) {
		int n = B_CYCLE - done > 64 ? 64 : B_CYCLE - done;
		struct iocb *ps[64];

		for (int i = 0; i < n; i++)
			ps[i] = p;
		if (syscall(SYS_io_submit, b, n, ps) != n || io_getevents_(b, n, n, ev, 5) != n)
			fail("cycling b at %d", done);
		done += n;
	}
	for (int i = 0; i < 5; i++) {
		prep(&cb_null[i], IOCB_CMD_PWRITE, devnull, "y", 1, 1000 + i);
		submit(b, &cb_null[i], "b's last five");
	}
	if (io_getevents_(b, 1, 1, ev, 5) != 1 || ev[0].data != 1000)
		fail("reaping b's first of five");
}

static void check_ring(aio_context_t ctx, const char *name, unsigned id, unsigned nr,
		       unsigned head, unsigned tail, const char *when)
{
	struct ring *r = (struct ring *)ctx;

	if (r->id != id || r->nr != nr || r->head != head || r->tail != tail)
		pr_err("%s: ring %s: slot %u nr %u head %u tail %u, not %u %u %u %u", when, name,
		       r->id, r->nr, r->head, r->tail, id, nr, head, tail);
}

/* exactly the events `want` (data, obj, res), and nothing after them */
static void expect(aio_context_t ctx, const char *name, struct io_event *want, int n)
{
	struct io_event ev[8];
	long got = io_getevents_(ctx, n, 8, ev, 5);

	if (got != n) {
		pr_err("ring %s: io_getevents gave %ld events, not %d", name, got, n);
		return;
	}
	for (int i = 0; i < n; i++)
		if (ev[i].data != want[i].data || ev[i].obj != want[i].obj || ev[i].res != want[i].res)
			pr_err("ring %s: event %d is data %llu obj %#llx res %lld, not %llu %#llx %lld", name, i,
			       ev[i].data, ev[i].obj, ev[i].res, want[i].data, want[i].obj, want[i].res);
	if ((got = io_getevents_(ctx, 0, 8, ev, 0)) != 0)
		pr_err("ring %s: %ld more events", name, got);
}

int main(int argc, char **argv)
{
	aio_context_t a = 0, b = 0;
	struct test_vma before[2], after[2];
	struct io_event want_a[2], want_b[4], more;
	char piped[16];

	test_init(argc, argv);
	devnull = open("/dev/null", O_WRONLY);
	file = open("aio00.data", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (devnull < 0 || file < 0 || pipe(pipefd))
		fail("open");
	if (write(file, FILE_TEXT, strlen(FILE_TEXT)) != (ssize_t)strlen(FILE_TEXT))
		fail("write aio00.data");
	if (syscall(SYS_io_setup, 16, &a) || syscall(SYS_io_setup, 200, &b))
		fail("io_setup");

	prep(&cb_pipe, IOCB_CMD_PWRITE, pipefd[1], "hello", 5, 11);
	prep(&cb_file, IOCB_CMD_PREAD, file, file_buf, sizeof(file_buf), 12);
	submit(a, &cb_pipe, "pipe write");
	submit(a, &cb_file, "file read");
	want_a[0] = (struct io_event){ .data = 11, .obj = (unsigned long)&cb_pipe, .res = 5 };
	want_a[1] = (struct io_event){ .data = 12, .obj = (unsigned long)&cb_file, .res = strlen(FILE_TEXT) };
	cycle(b);
	for (int i = 0; i < 4; i++)
		want_b[i] = (struct io_event){ .data = 1001 + i, .obj = (unsigned long)&cb_null[i + 1], .res = 1 };

	check_ring(a, "a", 0, 127, 0, 2, "before");
	check_ring(b, "b", 1, 511, 510, 3, "before");
	if (test_collect_smaps(a, a + 4096, &before[0], 1) != 1 ||
	    test_collect_smaps(b, b + 4 * 4096, &before[1], 1) != 1)
		fail("the rings' areas");
	for (int i = 0; i < 2; i++)
		if (strcmp(before[i].path, "/[aio] (deleted)") || before[i].end - before[i].start != (i ? 16384 : 4096))
			pr_err("before: ring area %lx-%lx %s", before[i].start, before[i].end, before[i].path);

	test_daemon();
	test_waitsig();

	if (test_collect_smaps(a, a + 4096, &after[0], 1) != 1 ||
	    test_collect_smaps(b, b + 4 * 4096, &after[1], 1) != 1) {
		pr_err("no areas at the rings' addresses");
		test_result();
		return 0;
	}
	test_cmp_vmas("ring areas", before, 2, after, 2);
	check_ring(a, "a", 0, 127, 0, 2, "after restore");
	check_ring(b, "b", 1, 511, 510, 3, "after restore");
	expect(a, "a", want_a, 2);
	expect(b, "b", want_b, 4);
	if (memcmp(file_buf, FILE_TEXT, strlen(FILE_TEXT)))
		pr_err("the PREAD's buffer lost its bytes");

	prep(&cb_more, IOCB_CMD_PWRITE, pipefd[1], "again", 5, 21);
	submit(a, &cb_more, "a new pipe write");
	more = (struct io_event){ .data = 21, .obj = (unsigned long)&cb_more, .res = 5 };
	expect(a, "a (new request)", &more, 1);
	if (read(pipefd[0], piped, sizeof(piped)) != 10 || memcmp(piped, "helloagain", 10))
		pr_err("the pipe does not hold both writes");
	prep(&cb_more, IOCB_CMD_PREAD, file, more_buf, sizeof(more_buf), 22);
	submit(b, &cb_more, "a new file read");
	more = (struct io_event){ .data = 22, .obj = (unsigned long)&cb_more, .res = strlen(FILE_TEXT) };
	expect(b, "b (new request)", &more, 1);
	check_ring(b, "b", 1, 511, 4, 4, "after the new request");

	if (syscall(SYS_io_destroy, a) || syscall(SYS_io_destroy, b))
		pr_err("io_destroy");
	else if (io_getevents_(a, 0, 1, &more, 0) != -1 || errno != EINVAL)
		pr_err("context a is still there after io_destroy");
	else if (test_collect_vmas(a, a + 4096, after, 1) != 0 || test_collect_vmas(b, b + 16384, after, 1) != 0)
		pr_err("a ring area is still mapped after io_destroy");
	test_result();
	return 0;
}
