/*
 * epoll_nested00: an epoll watched by another epoll.
 *
 * outer watches inner (data OUT) and a pipe's read end (data P); inner
 * watches two eventfds (data E1, E2).  After restore: nothing is ready;
 * writing E2's eventfd makes the outer report the inner epoll, and the inner
 * report E2 with its data; writing the pipe makes the outer report P; once
 * everything is read, nothing is ready again; EPOLL_CTL_DEL of inner from
 * outer works by the inner's fd number.
 */
#include "zdtmtst.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define OUT	0x0a0a0a0a0a0aULL
#define P	0x9999ULL
#define E1	0xe1e1e1e1ULL
#define E2	0xe2e2e2e2e2e2e2e2ULL

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int wait_list(int ep, uint64_t *data, int max)
{
	struct epoll_event ev[8];
	int i, n = epoll_wait(ep, ev, max < 8 ? max : 8, 0);

	for (i = 0; i < n; i++)
		data[i] = ev[i].data.u64;
	return n;
}

static void expect(int ep, uint64_t want, const char *what)
{
	uint64_t got[8];
	int n = wait_list(ep, got, 8);

	if (n != (want ? 1 : 0) || (want && got[0] != want))
		pr_err("%s: %d ready (first %#llx), expected %s %#llx", what, n,
		       n > 0 ? (unsigned long long)got[0] : 0ULL, want ? "one:" : "none",
		       (unsigned long long)want);
}

int main(int argc, char **argv)
{
	int outer, inner, e1, e2, p[2];
	uint64_t v = 3;
	char c;

	test_init(argc, argv);

	inner = epoll_create1(EPOLL_CLOEXEC);
	outer = epoll_create1(0);
	e1 = eventfd(0, 0);
	e2 = eventfd(0, 0);
	if (inner < 0 || outer < 0 || e1 < 0 || e2 < 0 || pipe(p))
		fail("epoll_create1/eventfd/pipe");
	if (add(inner, e1, EPOLLIN, E1) || add(inner, e2, EPOLLIN, E2) ||
	    add(outer, inner, EPOLLIN, OUT) || add(outer, p[0], EPOLLIN, P))
		fail("epoll_ctl ADD");

	test_daemon();
	test_waitsig();

	expect(outer, 0, "outer after restore");
	expect(inner, 0, "inner after restore");
	if (write(e2, &v, sizeof(v)) != sizeof(v))
		fail("write e2");
	expect(outer, OUT, "outer after writing e2");
	expect(inner, E2, "inner after writing e2");
	if (read(e2, &v, sizeof(v)) != sizeof(v))
		fail("read e2");
	expect(outer, 0, "outer after reading e2");

	if (write(p[1], "y", 1) != 1)
		fail("write to the pipe");
	expect(outer, P, "outer after writing the pipe");
	if (read(p[0], &c, 1) != 1)
		fail("read from the pipe");

	if (epoll_ctl(outer, EPOLL_CTL_DEL, inner, NULL))
		pr_err("EPOLL_CTL_DEL of the inner epoll (errno %d)", errno);
	if (write(e1, &v, sizeof(v)) != sizeof(v))
		fail("write e1");
	expect(outer, 0, "outer after removing inner");
	expect(inner, E1, "inner after writing e1");

	test_result();
	return 0;
}
