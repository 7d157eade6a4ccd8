/*
 * epoll_tfd00: epoll targets whose fd number no longer holds them, and the
 * registration flags.
 *
 * - closed: eventfd A (readable) is added under fd a, dup'ed to fd b, and
 *   fd a is closed: the epoll still watches it under the number a;
 * - replaced: eventfd C (empty) is added under fd n, dup'ed away, and fd n
 *   is made another eventfd X (readable), which is added under n too: the
 *   epoll has two targets under one number;
 * - in a child: eventfd K of the child only (the root closed its copy) is
 *   watched by the root's epoll under a number the root no longer has;
 * - EPOLLEXCLUSIVE (readable), EPOLLONESHOT that already fired before the
 *   dump (disabled), EPOLLET (empty at dump).
 * After restore: exactly A, X, K and the exclusive one are ready with their
 * data; reading A through b, X through n and K in the child clears them;
 * writing C (through its dup) makes C ready; the oneshot one stays silent
 * until EPOLL_CTL_MOD re-arms it; the edge-triggered one fires once per
 * write.
 */
#include "zdtmtst.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define A	0xaaaa0001ULL
#define C	0xcccc0003ULL
#define X	0x8888000aULL
#define K	0x4b4b0005ULL
#define E	0xe0e0e0e0ULL
#define O	0x0e0e0e0eULL
#define T	0x7e7e7e7eULL

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The set of data epoll_wait reports now must be exactly want[0..n). */
static void expect(int ep, const uint64_t *want, int n, const char *what)
{
	struct epoll_event ev[16];
	uint64_t got[16];
	int i, m = epoll_wait(ep, ev, 16, 0);

	for (i = 0; i < m; i++)
		got[i] = ev[i].data.u64;
	qsort(got, m > 0 ? m : 0, sizeof(got[0]), cmp_u64);
	if (m != n) {
		pr_err("%s: %d events ready, expected %d (first %#llx)", what, m, n,
		       m > 0 ? (unsigned long long)got[0] : 0ULL);
		return;
	}
	for (i = 0; i < n; i++)
		if (got[i] != want[i])
			pr_err("%s: event %d has data %#llx, expected %#llx", what, i,
			       (unsigned long long)got[i], (unsigned long long)want[i]);
}

static void drain(int fd, const char *what)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		pr_err("read %s (errno %d)", what, errno);
}

static void poke(int fd, const char *what)
{
	uint64_t v = 1;

	if (write(fd, &v, sizeof(v)) != sizeof(v))
		pr_err("write %s (errno %d)", what, errno);
}

int main(int argc, char **argv)
{
	int ep, a, b, c, cdup, n, x, ex, os, et, k, sync[2];
	struct epoll_event ev;
	pid_t kid;
	char ch;

	test_init(argc, argv);

	ep = epoll_create1(0);
	a = eventfd(1, EFD_NONBLOCK);
	c = eventfd(0, EFD_NONBLOCK);
	ex = eventfd(1, EFD_NONBLOCK);
	os = eventfd(1, EFD_NONBLOCK);
	et = eventfd(0, EFD_NONBLOCK);
	k = eventfd(1, EFD_NONBLOCK);
	if (ep < 0 || a < 0 || c < 0 || ex < 0 || os < 0 || et < 0 || k < 0 || pipe(sync))
		fail("epoll_create1/eventfd");
	if (add(ep, a, EPOLLIN, A) || add(ep, c, EPOLLIN, C) || add(ep, k, EPOLLIN, K) ||
	    add(ep, ex, EPOLLIN | EPOLLEXCLUSIVE, E) || add(ep, os, EPOLLIN | EPOLLONESHOT, O) ||
	    add(ep, et, EPOLLIN | EPOLLET, T))
		fail("epoll_ctl ADD");
	{
		uint64_t want[] = { A, E, O, K };

		qsort(want, 4, sizeof(want[0]), cmp_u64);
		expect(ep, want, 4, "before dump");	/* fires the oneshot one */
	}
	b = dup(a);
	close(a);				/* closed */
	n = c;
	cdup = dup(c);
	x = eventfd(1, EFD_NONBLOCK);
	if (b < 0 || cdup < 0 || x < 0 || dup2(x, n) != n)
		fail("dup");
	close(x);				/* fd n is now X */
	if (add(ep, n, EPOLLIN, X))
		fail("epoll_ctl ADD X under the old number");

	kid = test_fork();
	if (kid == 0) {
		close(sync[1]);
		test_child_ready();
		test_waitsig();
		if (read(sync[0], &ch, 1) != 1)
			pr_err("child: no word from the parent");
		drain(k, "K in the child");
		test_child_exit();
	}
	close(sync[0]);
	close(k);				/* only the child holds K now */

	test_daemon();
	test_waitsig();

	{
		uint64_t want[] = { A, X, K, E };

		qsort(want, 4, sizeof(want[0]), cmp_u64);
		expect(ep, want, 4, "after restore");
	}
	drain(b, "A through its dup");
	drain(n, "X");
	drain(ex, "the exclusive one");
	if (write(sync[1], "k", 1) != 1)
		fail("write sync");
	test_children_check();		/* the child has read K */
	expect(ep, NULL, 0, "after reading A, X, K and E");

	poke(cdup, "C through its dup");
	{
		uint64_t want[] = { C };

		expect(ep, want, 1, "C written");
	}
	drain(cdup, "C");

	ev.events = EPOLLIN;
	ev.data.u64 = O + 1;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, os, &ev))
		pr_err("EPOLL_CTL_MOD of the fired oneshot target (errno %d)", errno);
	else {
		uint64_t want[] = { O + 1 };

		expect(ep, want, 1, "oneshot re-armed");
	}
	drain(os, "the oneshot one");

	poke(et, "the edge-triggered one");
	{
		uint64_t want[] = { T };

		expect(ep, want, 1, "edge-triggered written");
	}
	expect(ep, NULL, 0, "edge-triggered, second wait");

	test_result();
	return 0;
}
