/*
 * busy_mem00: memory written at full speed while it is dumped is dumped
 * as of one instant.
 *
 * A thread sweeps a 32 MiB area page by page, over and over, filling every
 * 8-byte word of a page with the sweep's generation number, without pause
 * (also across the dump).  At any instant the area therefore reads: pages
 * [0, k) of generation g, page k possibly half written (g, then g-1), pages
 * (k, n) of g-1.  After restore (SIGTERM) the thread is stopped and the
 * whole area must still have that shape: a page dumped at another instant
 * than the others, lost, or restored from elsewhere breaks it.  The sweep
 * must also have gone on after the restore.
 */
#include "zdtmtst.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#define AREA	(32UL << 20)
#define PAGE	4096UL
#define WORDS	(PAGE / 8)
#define NPAGES	(AREA / PAGE)

static uint64_t *area;
static atomic_int stop;
static atomic_ulong sweeps;

static void *writer(void *arg)
{
	uint64_t gen;
	unsigned long p, w;

	(void)arg;
	for (gen = 1; !atomic_load_explicit(&stop, memory_order_relaxed); gen++) {
		for (p = 0; p < NPAGES; p++) {
			volatile uint64_t *page = area + p * WORDS;

			for (w = 0; w < WORDS; w++)
				page[w] = gen;
			if (atomic_load_explicit(&stop, memory_order_relaxed))
				return NULL;
		}
		atomic_fetch_add(&sweeps, 1);
	}
	return NULL;
}

/* The area's shape: 0 if it is g...g [g..g-1] g-1...g-1. */
static int check_shape(void)
{
	uint64_t g = area[0], cur = g;
	unsigned long p, w;
	int torn = 0;

	if (g == 0)
		return pr_err("page 0 was never written"), -1;
	for (p = 0; p < NPAGES; p++) {
		for (w = 0; w < WORDS; w++) {
			uint64_t v = area[p * WORDS + w];

			if (v == cur)
				continue;
			if (cur == g && v == g - 1 && !torn) {
				cur = g - 1;
				torn = 1;
				continue;
			}
			pr_err("page %lu word %lu: generation %llu where %llu was due (generation %llu at page 0)",
			       p, w, (unsigned long long)v, (unsigned long long)cur, (unsigned long long)g);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t t;
	unsigned long at_term;

	test_init(argc, argv);
	area = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		fail("mmap");
	if (test_thread_create(&t, writer, NULL))
		fail("pthread_create");
	while (atomic_load(&sweeps) < 2)
		usleep(1000);

	test_daemon();
	test_waitsig();

	at_term = atomic_load(&sweeps);
	usleep(200000);
	atomic_store(&stop, 1);
	if (test_thread_join(t))
		fail("the writer did not stop");
	test_msg("%lu sweeps at SIGTERM, %lu at the end", at_term, (unsigned long)atomic_load(&sweeps));
	if (atomic_load(&sweeps) == at_term && area[0] == area[AREA / 8 - 1])
		pr_err("the writer made no progress after restore");
	check_shape();
	test_result();
	return 0;
}
