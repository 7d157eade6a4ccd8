/*
 * rtc: an open /dev/rtc with periodic interrupts at 4 Hz survives C/R
 * (through the criu-rtc plugin, see rtc.desc).
 *
 * Set-up: open /dev/rtc read-only, RTC_IRQP_SET 4 Hz, RTC_PIE_ON, and
 * measure the ticks: every read() returns one unsigned long, the number of
 * interrupts since the last read in the high bytes and the status (RTC_PF,
 * RTC_IRQF) in the low byte.  Each tick is printed to the outfile.  After
 * SIGTERM: the fd is still the same rtc device, RTC_IRQP_READ says 4, and
 * periodic interrupts come again at 4 Hz (ticks printed again).  A read that
 * waits more than 2 s for a tick is a failure, not a hang.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <linux/rtc.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#define RTC_DEV "/dev/rtc"
#define TEST_HZ 4
#define NR_TICKS 6		/* 1.5 s at 4 Hz */
#define TICK_WAIT_MS 2000

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* One read(): the interrupt count, or -1 (after pr_err) on error or timeout. */
static long read_tick(int fd, unsigned long *status)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	unsigned long data;
	ssize_t n;
	int r;

	do
		r = poll(&pfd, 1, TICK_WAIT_MS);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		pr_err("poll on %s", RTC_DEV);
		return -1;
	}
	if (r == 0) {
		pr_err("no rtc interrupt within %d ms", TICK_WAIT_MS);
		return -1;
	}
	do
		n = read(fd, &data, sizeof(data));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(data)) {
		pr_err("read of %s returned %zd", RTC_DEV, n);
		return -1;
	}
	*status = data & 0xff;
	return (long)(data >> 8);
}

/*
 * Drain what accumulated, wait for one tick (the clock starts there), then
 * count NR_TICKS reads and check the rate from the interrupts they report
 * over the time they took.  0 if 4 Hz (+-25%).
 */
static int check_ticks(int fd, const char *when)
{
	unsigned long status, irqp = 0;
	long count, total = 0;
	double t0, t, rate;
	int i;

	if (ioctl(fd, RTC_IRQP_READ, &irqp)) {
		pr_err("%s: RTC_IRQP_READ", when);
		return -1;
	}
	if (irqp != TEST_HZ) {
		pr_err("%s: RTC_IRQP_READ says %lu Hz, expected %d", when, irqp, TEST_HZ);
		return -1;
	}
	count = read_tick(fd, &status);	/* what piled up while nobody read */
	if (count < 0)
		return -1;
	test_msg("%s: first read: %ld interrupt(s) pending, status 0x%02lx", when, count, status);
	if (read_tick(fd, &status) < 0)
		return -1;
	t0 = mono();
	for (i = 1; i <= NR_TICKS; i++) {
		count = read_tick(fd, &status);
		if (count < 0)
			return -1;
		t = mono() - t0;
		test_msg("%s: tick %d at +%.3f s: count %ld, status 0x%02lx", when, i, t, count, status);
		if (!(status & RTC_PF)) {
			pr_err("%s: tick %d without RTC_PF (status 0x%02lx)", when, i, status);
			return -1;
		}
		total += count;
	}
	t = mono() - t0;
	rate = total / t;
	test_msg("%s: %ld interrupts in %.3f s = %.2f Hz (expected %d)", when, total, t, rate, TEST_HZ);
	if (rate < TEST_HZ * 0.75 || rate > TEST_HZ * 1.25) {
		pr_err("%s: periodic rate %.2f Hz, expected %d Hz", when, rate, TEST_HZ);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct stat before, after;
	int fd;

	test_init(argc, argv);

	fd = open(RTC_DEV, O_RDWR | O_NONBLOCK);
	if (fd < 0)
		fail("open %s", RTC_DEV);
	if (fstat(fd, &before))
		fail("fstat %s", RTC_DEV);
	if (ioctl(fd, RTC_IRQP_SET, TEST_HZ))
		fail("RTC_IRQP_SET %d", TEST_HZ);
	if (ioctl(fd, RTC_PIE_ON, 0))
		fail("RTC_PIE_ON");
	if (check_ticks(fd, "before"))
		fail("no %d Hz ticks before C/R", TEST_HZ);

	test_daemon();
	test_waitsig();

	if (fstat(fd, &after))
		fail("fstat of the rtc fd after C/R");
	if (!S_ISCHR(after.st_mode) || after.st_rdev != before.st_rdev)
		fail("fd %d is no longer the rtc device (rdev %#llx, was %#llx)", fd,
		     (unsigned long long)after.st_rdev, (unsigned long long)before.st_rdev);
	check_ticks(fd, "after");
	test_result();
	return 0;
}
