/*
 * epoll_multi00: every registration of many epolls comes back, in several
 * processes.
 *
 * The root makes NEP epolls, epoll i watching NTG eventfds of its own (data
 * i*100+j, the even ones already readable), and first one epoll ("shared",
 * watching a readable eventfd) that its NCHILD children inherit by fork.
 * Each child makes NEP epolls of its own the same way (data
 * 10000*(child+1)+...).  After restore every process checks each of its epolls:
 * exactly the even targets are ready, with their data and EPOLLIN; writing
 * an odd target makes it ready; EPOLL_CTL_ADD of a target says EEXIST (it
 * is registered under that fd number).  The children check that the shared
 * epoll still reports the root's ready eventfd.
 */
#include "zdtmtst.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define NEP	6
#define NTG	5
#define NCHILD	2

static int eps[NEP], tgs[NEP][NTG], shared_ep, shared_tg;

static void make(uint64_t base)
{
	int i, j;

	for (i = 0; i < NEP; i++) {
		eps[i] = epoll_create1(i % 2 ? EPOLL_CLOEXEC : 0);
		if (eps[i] < 0)
			fail("epoll_create1");
		for (j = 0; j < NTG; j++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = base + i * 100 + j };

			tgs[i][j] = eventfd(j % 2 ? 0 : 1, 0);
			if (tgs[i][j] < 0 || epoll_ctl(eps[i], EPOLL_CTL_ADD, tgs[i][j], &ev))
				fail("eventfd/epoll_ctl");
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void check_all(const char *who, uint64_t base)
{
	struct epoll_event ev[NTG + 2], one = { .events = EPOLLIN };
	uint64_t got[NTG + 2], v = 1;
	int i, j, n, k;

	for (i = 0; i < NEP; i++) {
		n = epoll_wait(eps[i], ev, NTG + 2, 0);
		if (n != (NTG + 1) / 2) {
			pr_err("%s: epoll %d: %d targets ready, expected %d", who, i, n, (NTG + 1) / 2);
			continue;
		}
		for (k = 0; k < n; k++)
			got[k] = ev[k].data.u64;
		qsort(got, n, sizeof(got[0]), cmp_u64);
		for (k = 0, j = 0; j < NTG; j += 2, k++)
			if (got[k] != base + i * 100 + j || ev[k].events != EPOLLIN)
				pr_err("%s: epoll %d: ready data %#llx, expected %#llx", who, i,
				       (unsigned long long)got[k], (unsigned long long)(base + i * 100 + j));
		for (j = 1; j < NTG; j += 2) {
			if (write(tgs[i][j], &v, sizeof(v)) != sizeof(v))
				fail("write");
			n = epoll_wait(eps[i], ev, NTG + 2, 0);
			if (n != (NTG + 1) / 2 + (j + 1) / 2)
				pr_err("%s: epoll %d: target %d written, %d ready", who, i, j, n);
		}
		for (j = 0; j < NTG; j++)
			if (epoll_ctl(eps[i], EPOLL_CTL_ADD, tgs[i][j], &one) == 0 || errno != EEXIST)
				pr_err("%s: epoll %d: target %d is not registered under its fd", who, i, j);
	}
}

static void check_shared(const char *who)
{
	struct epoll_event ev[2];
	int n = epoll_wait(shared_ep, ev, 2, 0);

	if (n != 1 || ev[0].data.u64 != 0x5eed)
		pr_err("%s: the shared epoll reports %d events (first %#llx)", who, n,
		       n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL);
}

int main(int argc, char **argv)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x5eed };
	int c;

	test_init(argc, argv);

	shared_ep = epoll_create1(0);
	shared_tg = eventfd(3, 0);
	if (shared_ep < 0 || shared_tg < 0 || epoll_ctl(shared_ep, EPOLL_CTL_ADD, shared_tg, &ev))
		fail("shared epoll");
	for (c = 0; c < NCHILD; c++)
		if (test_fork() == 0) {
			make(10000 * (c + 1));
			test_child_ready();
			test_waitsig();
			check_all("child", 10000 * (c + 1));
			check_shared("child");
			test_child_exit();
		}
	make(0);

	test_daemon();
	test_waitsig();

	check_all("root", 0);
	check_shared("root");
	test_children_check();
	test_result();
	return 0;
}
