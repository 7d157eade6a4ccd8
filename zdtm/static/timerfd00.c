/*
 * timerfd00: timerfds keep clock, armed state, period and pending ticks.
 *
 * - long:   CLOCK_MONOTONIC one-shot, 60 s from set-up: after restore it
 *           still expires at the same moment (gettime's time left agrees
 *           with the monotonic clock within 0.5 s), no ticks yet;
 * - soon:   CLOCK_MONOTONIC one-shot, 2 s from set-up: fires at about the
 *           right time (not before, and not much after the later of its
 *           expiry and the restore);
 * - period: CLOCK_BOOTTIME, first in 0.3 s, then every 0.25 s, O_NONBLOCK:
 *           gettime shows the interval, and it keeps firing;
 * - abs:    CLOCK_REALTIME TFD_TIMER_ABSTIME at a fixed wall-clock time an
 *           hour ahead: same expiry;
 * - fired:  a one-shot that already expired, unread: its tick is still
 *           pending after restore (read gives 1), and it is disarmed.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NSEC	1000000000LL

static long long ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * NSEC + ts->tv_nsec;
}

static long long now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts_ns(&ts);
}

static int make(clockid_t c, int flags, int sflags, long long value, long long interval)
{
	struct itimerspec its = {
		.it_value = { value / NSEC, value % NSEC },
		.it_interval = { interval / NSEC, interval % NSEC },
	};
	int fd = timerfd_create(c, flags);

	if (fd < 0)
		fail("timerfd_create");
	if (timerfd_settime(fd, sflags, &its, NULL))
		fail("timerfd_settime");
	return fd;
}

static long long left(int fd, long long *interval)
{
	struct itimerspec its;

	if (timerfd_gettime(fd, &its))
		fail("timerfd_gettime");
	if (interval)
		*interval = ts_ns(&its.it_interval);
	return ts_ns(&its.it_value);
}

static int pending(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

static long long llabs_(long long v)
{
	return v < 0 ? -v : v;
}

int main(int argc, char **argv)
{
	long long long_at, soon_at, abs_at, iv, l, t, got_at;
	int long_fd, soon_fd, period_fd, abs_fd, fired_fd;
	uint64_t ticks;

	test_init(argc, argv);

	long_at = now_ns(CLOCK_MONOTONIC) + 60 * NSEC;
	long_fd = make(CLOCK_MONOTONIC, 0, 0, 60 * NSEC, 0);
	soon_at = now_ns(CLOCK_MONOTONIC) + 2 * NSEC;
	soon_fd = make(CLOCK_MONOTONIC, 0, 0, 2 * NSEC, 0);
	period_fd = make(CLOCK_BOOTTIME, TFD_NONBLOCK, 0, 300000000, 250000000);
	abs_at = (now_ns(CLOCK_REALTIME) / NSEC + 3600) * NSEC;
	abs_fd = make(CLOCK_REALTIME, 0, TFD_TIMER_ABSTIME, abs_at, 0);
	fired_fd = make(CLOCK_MONOTONIC, 0, 0, 1000000, 0);
	usleep(20000);
	if (!pending(fired_fd))
		fail("the 1 ms timer did not fire within 20 ms");

	test_daemon();
	test_waitsig();

	t = now_ns(CLOCK_MONOTONIC);
	l = left(long_fd, &iv);
	if (l <= 0 || iv != 0)
		pr_err("long: left %lld ns, interval %lld", l, iv);
	else if (llabs_(t + l - long_at) > NSEC / 2)
		pr_err("long: expires %lld ms off", (t + l - long_at) / 1000000);
	if (pending(long_fd))
		pr_err("long: has a tick already");

	l = left(abs_fd, &iv);
	t = now_ns(CLOCK_REALTIME);
	if (l <= 0 || llabs_(t + l - abs_at) > NSEC / 2)
		pr_err("abs: left %lld ns, expected about %lld", l, abs_at - t);

	if (!(fcntl(period_fd, F_GETFL) & O_NONBLOCK))
		pr_err("period: lost O_NONBLOCK");
	left(period_fd, &iv);
	if (iv != 250000000)
		pr_err("period: interval %lld ns, expected 250 ms", iv);
	while (read(period_fd, &ticks, sizeof(ticks)) == sizeof(ticks))
		;	/* whatever expired during C/R */
	t = now_ns(CLOCK_MONOTONIC);
	fcntl(period_fd, F_SETFL, 0);
	if (read(period_fd, &ticks, sizeof(ticks)) != sizeof(ticks) || ticks < 1)
		pr_err("period: no new tick");
	else if (now_ns(CLOCK_MONOTONIC) - t > 400000000)
		pr_err("period: next tick after %lld ms", (now_ns(CLOCK_MONOTONIC) - t) / 1000000);

	if (read(fired_fd, &ticks, sizeof(ticks)) != sizeof(ticks) || ticks != 1)
		pr_err("fired: the pending tick was lost");
	if (left(fired_fd, &iv) != 0 || iv != 0)
		pr_err("fired: armed again after restore");

	t = now_ns(CLOCK_MONOTONIC);
	if (read(soon_fd, &ticks, sizeof(ticks)) != sizeof(ticks) || ticks != 1)
		pr_err("soon: read gave no single tick");
	got_at = now_ns(CLOCK_MONOTONIC);
	if (got_at < soon_at - 10000000)
		pr_err("soon: fired %lld ms early", (soon_at - got_at) / 1000000);
	if (got_at > (soon_at > t ? soon_at : t) + NSEC / 2)
		pr_err("soon: fired %lld ms late", (got_at - (soon_at > t ? soon_at : t)) / 1000000);

	test_result();
	return 0;
}
