/*
 * The limit refcr's page I/O is measured against: the same bytes copied with
 * nothing but the system calls it cannot avoid.
 *
 *   limit dump PID FILE    pages present (or swapped) in PID's private areas,
 *                          anonymous ones only in file mappings -- the pages
 *                          refcr dumps -- read with process_vm_readv and
 *                          written to FILE (no fsync: refcr does none either);
 *                          their (addr, len) runs go to FILE.runs.
 *   limit restore FILE     a fresh child process gets one anonymous area per
 *                          run (untimed), then FILE is mapped (an 8 MiB
 *                          window at a time, MAP_POPULATE) and written into
 *                          it with process_vm_writev: one copy, from the page
 *                          cache (read() into a buffer first is a copy more).
 *
 * Both print the seconds the copy took (from before the pagemap scan resp.
 * the first read to after the last write / close), the CPU seconds it used
 * (user + system) and the bytes copied.
 * Batches are CHUNK bytes and at most IOV_MAX remote iovecs per call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define CHUNK (8UL << 20)
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)

struct run {
	unsigned long addr, len;
};

static struct run *runs;
static size_t nruns, cap;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) this process used so far */
static double cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A run never crosses areas: merge only within one (same_area). */
static void add_page(unsigned long addr, int same_area)
{
	if (same_area && nruns && runs[nruns - 1].addr + runs[nruns - 1].len == addr) {
		runs[nruns - 1].len += PAGE;
		return;
	}
	if (nruns == cap) {
		cap = cap ? cap * 2 : 1024;
		runs = realloc(runs, cap * sizeof(*runs));
		if (!runs)
			die("realloc");
	}
	runs[nruns].addr = addr;
	runs[nruns].len = PAGE;
	nruns++;
}

static void scan_area(int pm, unsigned long start, unsigned long end, int anon_only)
{
	static uint64_t ents[4096];
	unsigned long addr = start;

	while (addr < end) {
		size_t want = (end - addr) / PAGE, k;
		ssize_t got;

		if (want > 4096)
			want = 4096;
		got = pread(pm, ents, want * 8, (off_t)(addr / PAGE) * 8);
		if (got < 8)
			return;
		for (k = 0; k < (size_t)got / 8; k++, addr += PAGE) {
			if (!(ents[k] & (PM_PRESENT | PM_SWAPPED)))
				continue;
			if (anon_only && (ents[k] & PM_FILE))
				continue;
			add_page(addr, addr != start);
		}
	}
}

static void scan(int pid)
{
	char path[64], line[4096], perms[8], name[4096];
	unsigned long start, end, off, ino;
	FILE *maps;
	int pm;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	pm = open(path, O_RDONLY);
	if (!maps || pm < 0)
		die(path);
	while (fgets(line, sizeof(line), maps)) {
		name[0] = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %*s %lu %4095[^\n]", &start, &end, perms, &off, &ino, name) < 5)
			continue;
		if (perms[0] != 'r' || perms[3] != 'p'
		    || (name[0] == '[' && strcmp(name, "[heap]") && strcmp(name, "[stack]")))
			continue;	/* refcr reads unreadable areas through /proc/PID/mem */
		scan_area(pm, start, end, ino != 0);
	}
	fclose(maps);
	close(pm);
}

/* Copy runs[*i..] (from *skip bytes in) into/out of buf: one batch. */
static size_t batch(struct iovec *remote, size_t *cnt, size_t *i, size_t *skip)
{
	size_t size = 0;

	*cnt = 0;
	while (*i < nruns && *cnt < IOV_MAX && size < CHUNK) {
		size_t take = runs[*i].len - *skip;

		if (take > CHUNK - size)
			take = CHUNK - size;
		remote[*cnt].iov_base = (void *)(runs[*i].addr + *skip);
		remote[*cnt].iov_len = take;
		(*cnt)++;
		size += take;
		*skip += take;
		if (*skip == runs[*i].len) {
			(*i)++;
			*skip = 0;
		}
	}
	return size;
}

static void write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w <= 0)
			die("write");
		buf += w;
		n -= (size_t)w;
	}
}

static int dump(int pid, const char *file)
{
	static struct iovec remote[IOV_MAX];
	char *buf = malloc(CHUNK), path[4200];
	size_t i = 0, skip = 0, cnt, total = 0;
	double t0 = now(), c0 = cpu();
	int fd;

	if (!buf)
		die("malloc");
	scan(pid);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die(file);
	for (;;) {
		size_t size = batch(remote, &cnt, &i, &skip);
		struct iovec local = { buf, size };

		if (!size)
			break;
		if (process_vm_readv(pid, &local, 1, remote, cnt, 0) != (ssize_t)size)
			die("process_vm_readv");
		write_all(fd, buf, size);
		total += size;
	}
	if (close(fd))
		die("close");
	printf("%.6f %.6f %zu\n", now() - t0, cpu() - c0, total);
	snprintf(path, sizeof(path), "%s.runs", file);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path);
	write_all(fd, (const char *)runs, nruns * sizeof(*runs));
	close(fd);
	return 0;
}

static void load_runs(const char *file)
{
	char path[4200];
	off_t size;
	int fd;

	snprintf(path, sizeof(path), "%s.runs", file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	size = lseek(fd, 0, SEEK_END);
	runs = malloc((size_t)size + 1);
	if (!runs || pread(fd, runs, (size_t)size, 0) != size)
		die(path);
	nruns = (size_t)size / sizeof(*runs);
	close(fd);
}

/* The fresh process: an area per run, their addresses into the shared table. */
static pid_t fresh_child(struct run *table)
{
	int ready[2];
	pid_t pid;
	char c;

	if (pipe(ready))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		for (size_t k = 0; k < nruns; k++) {
			void *p = mmap(NULL, runs[k].len, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p == MAP_FAILED)
				die("mmap");
			table[k].addr = (unsigned long)p;
			table[k].len = runs[k].len;
		}
		if (write(ready[1], "x", 1) != 1)
			die("write");
		for (;;)
			pause();
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		die("fresh child");
	close(ready[0]);
	return pid;
}

static int restore(const char *file)
{
	static struct iovec remote[IOV_MAX];
	size_t i = 0, skip = 0, cnt, total = 0;
	struct run *table;
	double t0, c0;
	pid_t child;
	int fd;

	load_runs(file);
	table = mmap(NULL, nruns * sizeof(*table) + 1, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (table == MAP_FAILED)
		die("mmap");
	child = fresh_child(table);
	t0 = now();
	c0 = cpu();
	free(runs);
	runs = table;		/* the same runs, at the child's addresses */
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(file);
	for (;;) {
		size_t size = batch(remote, &cnt, &i, &skip);
		struct iovec local;
		void *win;

		if (!size)
			break;
		/* the file's pages themselves are the source: one copy, none through a buffer */
		win = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, (off_t)total);
		if (win == MAP_FAILED)
			die("mmap");
		local.iov_base = win;
		local.iov_len = size;
		if (process_vm_writev(child, &local, 1, remote, cnt, 0) != (ssize_t)size)
			die("process_vm_writev");
		munmap(win, size);
		total += size;
	}
	close(fd);
	printf("%.6f %.6f %zu\n", now() - t0, cpu() - c0, total);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "dump"))
		return dump(atoi(argv[2]), argv[3]);
	if (argc == 3 && !strcmp(argv[1], "restore"))
		return restore(argv[2]);
	fprintf(stderr, "usage: %s dump PID FILE | restore FILE\n", argv[0]);
	return 2;
}
