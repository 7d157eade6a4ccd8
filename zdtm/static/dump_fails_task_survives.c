/*
 * dump_fails_task_survives: a dump that fails must leave the task running
 * and unchanged.
 *
 * The harness runs a dump made to fail on purpose (.desc: crfail, with
 * REFCR_FAULT=dump-after-memory), checks the task is still alive, and
 * sends SIGTERM.  The task holds memory patterns, a pipe with data and a
 * file with an offset, and checks them as usual; and, since nothing was
 * restored, everything the dumper may have touched must be exactly as
 * before: the whole /proc/self/maps (no leftover parasite areas; only the
 * end of [heap] may move), the set of fds (no leftover fds), the signal
 * mask and dispositions, and no tracer attached (TracerPid 0).
 */
#include "zdtmtst.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PS	4096UL
#define MEM	(64 * PS)
#define PIPE_DATA 3000
#define FSIZE	20000
#define FOFF	7777
#define MAX_VMAS 512

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static void list_fds(char *out, size_t size)
{
	struct dirent *de;
	size_t l = 0;
	DIR *d;

	out[0] = '\0';
	d = opendir("/proc/self/fd");
	if (!d)
		fail("opendir /proc/self/fd");
	while ((de = readdir(d))) {
		char path[300], target[256];
		ssize_t n;

		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d) ||
		    atoi(de->d_name) == test_ready_fd())
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		l += snprintf(out + l, size - l, "%s->%s ", de->d_name, target);
		if (l >= size)
			break;
	}
	closedir(d);
}

static int tracer_pid(void)
{
	char *s, *p;
	int t = -1;

	if (test_read_file("/proc/self/status", &s) < 0)
		fail("read /proc/self/status");
	p = strstr(s, "TracerPid:");
	if (p)
		t = atoi(p + 10);
	free(s);
	return t;
}

static void get_sigactions(struct ksigaction *ks)
{
	int sig;

	for (sig = 1; sig <= 64; sig++)
		if (syscall(SYS_rt_sigaction, sig, NULL, &ks[sig], 8))
			fail("rt_sigaction(%d)", sig);
}

int main(int argc, char **argv)
{
	static struct test_vma vb[MAX_VMAS], va[MAX_VMAS];
	static struct ksigaction sa_b[65], sa_a[65];
	static char fds_b[4096], fds_a[4096];
	int nb, na, p[2], fd, i, t;
	sigset_t blk, mask_b, mask_a;
	char *mem, *buf;
	off_t o;

	test_init(argc, argv);

	buf = malloc(FSIZE);
	mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!buf || mem == MAP_FAILED)
		fail("memory");
	datagen(mem, MEM, 1);

	if (pipe(p))
		fail("pipe");
	datagen(buf, PIPE_DATA, 2);
	if (write(p[1], buf, PIPE_DATA) != PIPE_DATA)
		fail("write pipe");

	fd = open("dump_fails.data", O_CREAT | O_TRUNC | O_RDWR, 0644);
	datagen(buf, FSIZE, 3);
	if (fd < 0 || test_write_all(fd, buf, FSIZE) != FSIZE ||
	    lseek(fd, FOFF, SEEK_SET) != FOFF)
		fail("data file");

	sigemptyset(&blk);
	sigaddset(&blk, SIGUSR2);
	sigaddset(&blk, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &blk, NULL);
	signal(SIGUSR1, SIG_IGN);

	/* Snapshot (twice, so that lazily allocated buffers exist already). */
	for (i = 0; i < 2; i++) {
		list_fds(fds_b, sizeof(fds_b));
		nb = test_collect_vmas(0, ~0UL, vb, MAX_VMAS);
		tracer_pid();
	}
	if (nb < 0)
		fail("too many VMAs");
	sigprocmask(SIG_BLOCK, NULL, &mask_b);
	get_sigactions(sa_b);

	test_daemon();
	test_waitsig();

	/* Nothing of the dumper left behind. */
	t = tracer_pid();
	if (t != 0)
		pr_err("TracerPid is %d: the dumper did not detach", t);
	list_fds(fds_a, sizeof(fds_a));
	if (strcmp(fds_a, fds_b))
		pr_err("fds changed: '%s' -> '%s'", fds_b, fds_a);
	na = test_collect_vmas(0, ~0UL, va, MAX_VMAS);
	for (i = 0; i < nb && i < na; i++)
		if (!strcmp(vb[i].path, "[heap]") && !strcmp(va[i].path, "[heap]"))
			va[i].end = vb[i].end;
	test_cmp_vmas("/proc/self/maps", vb, nb, va, na);
	sigprocmask(SIG_BLOCK, NULL, &mask_a);
	for (i = 1; i <= 64; i++)
		if (sigismember(&mask_a, i) != sigismember(&mask_b, i))
			pr_err("signal %d: blocked %d -> %d", i, sigismember(&mask_b, i),
			       sigismember(&mask_a, i));
	get_sigactions(sa_a);
	for (i = 1; i <= 64; i++)
		if (memcmp(&sa_a[i], &sa_b[i], sizeof(sa_a[i])))
			pr_err("signal %d: disposition changed", i);

	/* The state itself. */
	if (datachk(mem, MEM, 1))
		pr_err("memory pattern");
	memset(buf, 0, PIPE_DATA);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	if (read(p[0], buf, FSIZE) != PIPE_DATA || datachk(buf, PIPE_DATA, 2))
		pr_err("pipe data");
	if ((o = lseek(fd, 0, SEEK_CUR)) != FOFF)
		pr_err("file offset %lld, expected %d", (long long)o, FOFF);
	if (read(fd, buf, 100) != 100 || datachk_at(buf, 100, 3, FOFF))
		pr_err("file data at the offset");

	test_result();
	return 0;
}
