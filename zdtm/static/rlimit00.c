/*
 * rlimit00: resource limits survive.
 *
 * Several soft and hard limits are lowered to unusual values (lowering
 * only: a hard limit may not be raisable); after restore every limit
 * (getrlimit for all resources, and /proc/self/limits) is the same.  The
 * NOFILE soft limit is also checked to be effective.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const names[RLIM_NLIMITS] = {
	[RLIMIT_CPU] = "CPU", [RLIMIT_FSIZE] = "FSIZE", [RLIMIT_DATA] = "DATA",
	[RLIMIT_STACK] = "STACK", [RLIMIT_CORE] = "CORE", [RLIMIT_RSS] = "RSS",
	[RLIMIT_NPROC] = "NPROC", [RLIMIT_NOFILE] = "NOFILE",
	[RLIMIT_MEMLOCK] = "MEMLOCK", [RLIMIT_AS] = "AS", [RLIMIT_LOCKS] = "LOCKS",
	[RLIMIT_SIGPENDING] = "SIGPENDING", [RLIMIT_MSGQUEUE] = "MSGQUEUE",
	[RLIMIT_NICE] = "NICE", [RLIMIT_RTPRIO] = "RTPRIO", [RLIMIT_RTTIME] = "RTTIME",
};

static const struct {
	int res;
	rlim_t soft, hard;
} targets[] = {
	{ RLIMIT_NOFILE, 333, 777 },
	{ RLIMIT_CORE, 0, 12345678 },
	{ RLIMIT_CPU, 3333, 4444 },
	{ RLIMIT_FSIZE, 1234567890, 2345678901ULL },
	{ RLIMIT_STACK, 7 << 20, 111 << 20 },
	{ RLIMIT_MEMLOCK, 65536 * 3, 65536 * 5 },
	{ RLIMIT_MSGQUEUE, 400000, 700000 },
	{ RLIMIT_SIGPENDING, 1111, 2222 },
	{ RLIMIT_LOCKS, 5555, RLIM_INFINITY },
	{ RLIMIT_RTTIME, 900000, 1900000 },
	{ RLIMIT_NICE, 0, 3 },
	{ RLIMIT_RTPRIO, 0, 2 },
};

static rlim_t lower(rlim_t cur, rlim_t want)
{
	return want < cur ? want : cur;
}

int main(int argc, char **argv)
{
	struct rlimit before[RLIM_NLIMITS], after[RLIM_NLIMITS], r;
	char *lim_before, *lim_after;
	size_t i;
	int res, fd, changed = 0;

	test_init(argc, argv);

	for (i = 0; i < ARRAY_SIZE(targets); i++) {
		if (getrlimit(targets[i].res, &r))
			fail("getrlimit");
		r.rlim_max = lower(r.rlim_max, targets[i].hard);
		r.rlim_cur = lower(lower(r.rlim_cur, targets[i].soft), r.rlim_max);
		if (setrlimit(targets[i].res, &r))
			fail("setrlimit %s", names[targets[i].res]);
		if (r.rlim_cur == targets[i].soft)
			changed++;
	}
	if (changed < 6)
		fail("only %d limits could be set to the test values", changed);

	for (res = 0; res < RLIM_NLIMITS; res++)
		if (getrlimit(res, &before[res]))
			fail("getrlimit(%d)", res);
	if (test_read_file("/proc/self/limits", &lim_before) < 0)
		fail("read /proc/self/limits");

	test_daemon();
	test_waitsig();

	for (res = 0; res < RLIM_NLIMITS; res++) {
		if (getrlimit(res, &after[res]))
			fail("getrlimit(%d)", res);
		if (after[res].rlim_cur != before[res].rlim_cur ||
		    after[res].rlim_max != before[res].rlim_max)
			pr_err("RLIMIT_%s: %llu/%llu -> %llu/%llu", names[res],
			       (unsigned long long)before[res].rlim_cur,
			       (unsigned long long)before[res].rlim_max,
			       (unsigned long long)after[res].rlim_cur,
			       (unsigned long long)after[res].rlim_max);
	}
	if (test_read_file("/proc/self/limits", &lim_after) < 0)
		fail("read /proc/self/limits");
	if (strcmp(lim_before, lim_after))
		pr_err("/proc/self/limits changed:\n%s\n---\n%s", lim_before, lim_after);

	/* The NOFILE soft limit is enforced. */
	fd = fcntl(0, F_DUPFD, before[RLIMIT_NOFILE].rlim_cur);
	if (fd >= 0 || errno != EINVAL)
		pr_err("F_DUPFD at the NOFILE limit %llu: %d",
		       (unsigned long long)before[RLIMIT_NOFILE].rlim_cur, fd);
	fd = fcntl(0, F_DUPFD, before[RLIMIT_NOFILE].rlim_cur - 1);
	if (fd < 0)
		pr_err("F_DUPFD just below the NOFILE limit");
	else
		close(fd);

	test_result();
	return 0;
}
