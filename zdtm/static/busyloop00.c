/*
 * busyloop00: a task spinning hot on the CPU is checkpointed.
 *
 * It steps 1024 LCGs kept in memory in round-robin plus one kept in a
 * register, until SIGTERM.  Afterwards every state is compared with the
 * value computed directly (LCG jump-ahead) from the step count, so a lost
 * or stale page, a lost register or a skipped/duplicated step shows.
 */
#include "zdtmtst.h"

#define LANES	1024
#define A	6364136223846793005ULL
#define C	1442695040888963407ULL

static uint64_t lanes[LANES];

/* The state of an LCG started at x after n steps. */
static uint64_t lcg_jump(uint64_t x, uint64_t n)
{
	uint64_t acc_a = 1, acc_c = 0, a = A, c = C;

	while (n) {
		if (n & 1) {
			acc_a *= a;
			acc_c = acc_c * a + c;
		}
		c = (a + 1) * c;
		a *= a;
		n >>= 1;
	}
	return acc_a * x + acc_c;
}

static uint64_t lane_seed(int i)
{
	return 0x9e3779b97f4a7c15ULL * (i + 1);
}

int main(int argc, char **argv)
{
	uint64_t steps = 0, reg = 12345, i, bad = 0;

	test_init(argc, argv);

	for (i = 0; i < LANES; i++)
		lanes[i] = lane_seed(i);
	if (lcg_jump(lane_seed(3), 2) != (lane_seed(3) * A + C) * A + C)
		fail("jump-ahead self-test");

	test_daemon();

	while (test_go()) {
		for (i = 0; i < 4 * LANES; i++) {
			uint64_t *l = &lanes[(steps + i) % LANES];

			*l = *l * A + C;
			reg = reg * A + C;
		}
		steps += 4 * LANES;
	}

	test_msg("%llu steps", (unsigned long long)steps);
	if (steps == 0)
		fail("no steps done");
	if (reg != lcg_jump(12345, steps))
		fail("the register-held state is wrong after %llu steps",
		     (unsigned long long)steps);
	for (i = 0; i < LANES; i++) {
		/* Lane i was stepped once per full round (steps % LANES == 0). */
		if (lanes[i] != lcg_jump(lane_seed(i), steps / LANES)) {
			if (!bad)
				pr_err("lane %llu is wrong", (unsigned long long)i);
			bad++;
		}
	}
	if (bad)
		fail("%llu of %d memory lanes are wrong", (unsigned long long)bad, LANES);

	pass();
	return 0;
}
