/*
 * rseq00: glibc's rseq registration survives.
 *
 * glibc registers an rseq area for every thread (at __thread_pointer +
 * __rseq_offset).  After restore:
 *  - re-registering the same area with the same length and RSEQ_SIG gives
 *    EBUSY: it is still registered, at that address, with that signature
 *    (a different address gives EINVAL, a different signature EPERM, and
 *    no registration at all would succeed);
 *  - the kernel still updates it: after pinning the thread to each allowed
 *    CPU in turn, rseq->cpu_id is that CPU (a restored but unregistered area
 *    would keep the stale value).
 */
#include "zdtmtst.h"

#include <sched.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct rseq *area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

static unsigned int reg_len(void)
{
	/* glibc registers the whole area, at least the original 32 bytes. */
	return __rseq_size > 32 ? __rseq_size : 32;
}

static int try_register(uint32_t sig)
{
	return syscall(SYS_rseq, area(), reg_len(), 0, sig);
}

static int getcpu_raw(void)
{
	unsigned int cpu;

	if (syscall(SYS_getcpu, &cpu, NULL, NULL))
		fail("getcpu");
	return cpu;
}

/* Pin to each allowed CPU and check rseq's cpu_id follows. */
static int check_cpu_ids(const char *when)
{
	volatile struct rseq *rs = area();
	cpu_set_t orig, one;
	int cpu, n = 0, errs = 0;

	if (sched_getaffinity(0, sizeof(orig), &orig))
		fail("sched_getaffinity");
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		int got, raw;

		if (!CPU_ISSET(cpu, &orig))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			fail("sched_setaffinity(%d)", cpu);
		sched_yield();
		raw = getcpu_raw();
		got = (int)rs->cpu_id;
		if (raw != cpu)
			fail("pinned to %d but running on %d", cpu, raw);
		if (got != cpu || (int)rs->cpu_id_start != cpu) {
			pr_err("%s: on CPU %d rseq cpu_id=%d cpu_id_start=%u", when, cpu,
			       got, rs->cpu_id_start);
			errs++;
		}
		n++;
	}
	if (sched_setaffinity(0, sizeof(orig), &orig))
		fail("sched_setaffinity");
	if (n < 2)
		test_msg("only %d CPU allowed: the cpu_id check is weak", n);
	return errs;
}

int main(int argc, char **argv)
{
	volatile struct rseq *rs;
	void *addr;
	int r;

	test_init(argc, argv);

	if (__rseq_size == 0)
		fail("glibc did not register rseq (GLIBC_TUNABLES=glibc.pthread.rseq=0?)");
	rs = area();
	addr = (void *)rs;
	test_msg("rseq area %p, __rseq_size %u, cpu_id %d", addr, __rseq_size, (int)rs->cpu_id);

	r = try_register(RSEQ_SIG);
	if (r != -1 || errno != EBUSY)
		fail("re-registering rseq at start: %d, expected EBUSY", r);
	r = try_register(RSEQ_SIG ^ 1);
	if (r != -1 || errno != EPERM)
		fail("registering with another signature: %d, expected EPERM", r);
	if (check_cpu_ids("at start"))
		fail("rseq cpu_id does not follow the CPU at start");

	test_daemon();
	test_waitsig();

	if ((void *)area() != addr)
		pr_err("rseq area moved: %p -> %p", addr, (void *)area());
	if ((int)rs->cpu_id < 0)
		pr_err("rseq cpu_id is %d", (int)rs->cpu_id);
	if (rs->rseq_cs)
		pr_err("rseq_cs is %#llx outside a critical section",
		       (unsigned long long)rs->rseq_cs);

	r = try_register(RSEQ_SIG);
	if (r == 0) {
		pr_err("rseq was not registered any more (registering succeeded)");
	} else if (errno != EBUSY) {
		pr_err("re-registering rseq: %s; expected EBUSY (EINVAL: other area/length, EPERM: other signature)",
		       strerror(errno));
	} else {
		r = try_register(RSEQ_SIG ^ 1);
		if (r != -1 || errno != EPERM)
			pr_err("registering with another signature: %d, expected EPERM", r);
		check_cpu_ids("after restore");
	}

	test_result();
	return 0;
}
