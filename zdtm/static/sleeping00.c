/*
 * sleeping00: a task sleeping in nanosleep() is checkpointed.
 *
 * The main flow sleeps in nanosleep(100 s, &rem).  It must come back only
 * because of SIGTERM: -1/EINTR with the SIGTERM flag set.  Returning 0 (slept
 * too short), EINTR without SIGTERM (a restore that interrupted the sleep),
 * another error, or a remaining time that is not in (0, 100 s] or claims
 * more sleep than the time that passed, is a FAIL.
 */
#include "zdtmtst.h"

#include <time.h>

#define SLEEP_S 100

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct timespec req = { SLEEP_S, 0 }, rem = { -1, -1 };
	double t0, elapsed, left;
	int r, err;

	test_init(argc, argv);

	test_daemon();
	t0 = mono();
	r = nanosleep(&req, &rem);
	err = errno;
	elapsed = mono() - t0;

	if (r == 0)
		fail("nanosleep returned 0 after %.3f s: it did not sleep %d s", elapsed, SLEEP_S);
	errno = err;
	if (err != EINTR)
		fail("nanosleep failed");
	if (!test_sigterm_seen)
		fail("nanosleep was interrupted after %.3f s, but not by SIGTERM", elapsed);
	left = rem.tv_sec + rem.tv_nsec / 1e9;
	test_msg("slept %.3f s, %.3f s left", elapsed, left);
	if (rem.tv_nsec < 0 || rem.tv_nsec >= 1000000000L || rem.tv_sec < 0 ||
	    left <= 0 || left > SLEEP_S)
		fail("nonsense remaining time %lld.%09ld", (long long)rem.tv_sec, rem.tv_nsec);
	/* It cannot have slept more than the time that passed (1 s slack). */
	if (SLEEP_S - left > elapsed + 1)
		fail("remaining %.3f s means %.3f s slept, but only %.3f s passed",
		     left, SLEEP_S - left, elapsed);

	pass();
	return 0;
}
