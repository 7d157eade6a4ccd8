/* predump_chain00: five --leave-running --track-mem dumps of a process that
 * rewrites part of its memory between them; every dump of the chain is
 * restored (restore_each) and must hold the memory of its own moment. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "zdtmtst.h"
#include "ckpt.h"

#define PAGES	128
#define PER	16		/* pages rewritten per step */
#define STEPS	5		/* checkpoints; step STEPS+1 precedes the real dump */
#define PG	4096

static size_t page_of(int step, int k)
{
	return (size_t)(step * 13 + k * 7) % PAGES;	/* 7 is prime to 128: distinct */
}

static void apply(char *mem, int step)
{
	for (int k = 0; k < PER; k++) {
		size_t p = page_of(step, k);

		datagen(mem + p * PG, PG, (uint64_t)step * 1000 + p);
	}
}

int main(int argc, char **argv)
{
	char *area, *want;
	int step, at = 0;

	test_init(argc, argv);
	area = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	want = malloc(PAGES * PG);
	if (area == MAP_FAILED || !want)
		fail("mmap/malloc");
	for (size_t p = 0; p < PAGES; p++)
		datagen(area + p * PG, PG, p);
	test_daemon();

	for (step = 1; step <= STEPS + 1; step++) {
		apply(area, step);
		if (step > 1)	/* pages written since the previous checkpoint */
			test_checkpoint_written(step, area, PAGES * PG, PER);
		test_checkpoint(step);
		if (step <= STEPS && (at = test_restored_checkpoint()) == step)
			break;	/* this is a restored copy of checkpoint `step` */
	}
	if (!at)
		at = STEPS + 1;		/* the real dump */
	test_waitsig();

	for (size_t p = 0; p < PAGES; p++)
		datagen(want + p * PG, PG, p);
	for (step = 1; step <= at; step++)
		apply(want, step);
	for (size_t p = 0; p < PAGES; p++)
		if (memcmp(area + p * PG, want + p * PG, PG))
			pr_err("restored into moment %d: page %zu differs", at, p);
	test_msg("checked the memory of moment %d\n", at);
	test_result();
	return 0;
}
