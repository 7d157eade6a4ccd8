/*
 * epoll00: an epoll keeps its interest list, by fd number and file.
 *
 * Targets: an eventfd already readable at dump (level-triggered, data A),
 * the read end of a pipe (data B), a second eventfd edge-triggered for
 * EPOLLIN|EPOLLOUT (data C), and a oneshot eventfd (data D).  After restore:
 * only A is ready; writing the pipe makes B ready with its data; writing the
 * second eventfd gives C once (edge); the oneshot one fires once, then
 * stays disabled until EPOLL_CTL_MOD re-arms it; EPOLL_CTL_DEL on the pipe's
 * fd number works (the target is registered under the task's own fd
 * number) and adding it again says EEXIST only before the delete.
 */
#include "zdtmtst.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define A	0x1111222233334444ULL
#define B	0xbbbbULL
#define C	0xc0ffee00c0ffeeULL
#define D	0xdddddddddddddddULL

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* The one event epoll_wait reports now, or fail the check. */
static void expect(int ep, uint64_t data, uint32_t events, const char *what)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, 0);

	if (n != 1)
		pr_err("%s: %d events ready, expected 1 (first data %#llx)", what, n,
		       n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL);
	else if (ev[0].data.u64 != data || ev[0].events != events)
		pr_err("%s: data %#llx events %#x, expected %#llx %#x", what,
		       (unsigned long long)ev[0].data.u64, ev[0].events,
		       (unsigned long long)data, events);
}

static void expect_none(int ep, const char *what)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, 0);

	if (n != 0)
		pr_err("%s: %d events ready, expected none (first data %#llx)", what, n,
		       n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL);
}

int main(int argc, char **argv)
{
	int ep, ea, ec, ed, p[2];
	struct epoll_event ev;
	uint64_t v = 1;
	char c;

	test_init(argc, argv);

	ep = epoll_create1(0);
	ea = eventfd(1, 0);
	ec = eventfd(0, 0);
	ed = eventfd(0, 0);
	if (ep < 0 || ea < 0 || ec < 0 || ed < 0 || pipe(p))
		fail("epoll_create1/eventfd/pipe");
	if (add(ep, ea, EPOLLIN, A) || add(ep, p[0], EPOLLIN, B) ||
	    add(ep, ec, EPOLLIN | EPOLLET, C) || add(ep, ed, EPOLLIN | EPOLLONESHOT, D))
		fail("epoll_ctl ADD");
	expect(ep, A, EPOLLIN, "before dump");

	test_daemon();
	test_waitsig();

	expect(ep, A, EPOLLIN, "after restore");
	if (read(ea, &v, sizeof(v)) != sizeof(v))
		fail("read ea");
	expect_none(ep, "after reading the eventfd");

	if (write(p[1], "x", 1) != 1)
		fail("write to the pipe");
	expect(ep, B, EPOLLIN, "pipe written");
	if (read(p[0], &c, 1) != 1)
		fail("read from the pipe");

	v = 5;
	if (write(ec, &v, sizeof(v)) != sizeof(v))
		fail("write ec");
	expect(ep, C, EPOLLIN, "edge-triggered eventfd written");
	expect_none(ep, "edge-triggered eventfd, second wait");

	if (write(ed, &v, sizeof(v)) != sizeof(v))
		fail("write ed");
	expect(ep, D, EPOLLIN, "oneshot eventfd written");
	expect_none(ep, "oneshot eventfd, second wait");
	ev.events = EPOLLIN;
	ev.data.u64 = D + 1;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, ed, &ev))
		pr_err("EPOLL_CTL_MOD of the oneshot target (errno %d)", errno);
	else
		expect(ep, D + 1, EPOLLIN, "oneshot eventfd re-armed");
	if (read(ed, &v, sizeof(v)) != sizeof(v))
		fail("read ed");

	if (add(ep, p[0], EPOLLIN, B) == 0 || errno != EEXIST)
		pr_err("the pipe is not registered under its fd number");
	if (epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL))
		pr_err("EPOLL_CTL_DEL of the pipe (errno %d)", errno);
	if (write(p[1], "x", 1) != 1)
		fail("write to the pipe");
	expect_none(ep, "pipe written after EPOLL_CTL_DEL");

	test_result();
	return 0;
}
