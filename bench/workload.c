/*
 * The processes bench/dump_restore.py checkpoints.
 *
 *   workload DIR KIND N
 *
 * KIND and N:  trivial 0 | anon MIB | maps COUNT | threads COUNT | fds COUNT | tree PROCS
 *
 * The workload sets its state up, then creates DIR/ready and waits for
 * signals (it is the root of a new session, stdio on /dev/null):
 *   SIGUSR1  rewrite 1% of the anonymous pages (every 100th page gets a new
 *            generation), then create DIR/changed-G (G = the new generation);
 *   SIGUSR2  check every piece of its state, write "OK\n" or "FAIL <why>\n"
 *            to DIR/verdict.tmp and rename it to DIR/verdict.
 * Every page written carries its index and generation, so a restored process
 * whose memory came back wrong (or from the wrong image of a chain) says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL

static const char *dir;
static long count;
static volatile sig_atomic_t want_change, want_verify;

/* anon: one area of count MiB; maps: count one-page areas */
static char *area;
static char **maps;
static unsigned gen;
/* fds */
static int first_fd;
static struct stat fd_st;
/* tree */
static pid_t *kids;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void touch(const char *name)
{
	char path[4096], tmp[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(tmp);
	close(fd);
	if (rename(tmp, path))
		die(path);
}

/* Page i holds its index in the first word, (i + g) in every other byte. */
static void fill_page(char *p, unsigned long i, unsigned g)
{
	memset(p, (int)((i + g) & 0xff), PAGE);
	memcpy(p, &i, sizeof(i));
}

static int page_ok(const char *p, unsigned long i, unsigned g)
{
	unsigned long got;

	memcpy(&got, p, sizeof(got));
	return got == i && (unsigned char)p[PAGE - 1] == ((i + g) & 0xff)
	       && (unsigned char)p[PAGE / 2] == ((i + g) & 0xff);
}

static unsigned page_gen(unsigned long i)
{
	return i % 100 == 0 ? gen : 0;
}

static void setup_anon(void)
{
	unsigned long i, n = (unsigned long)count << 20;

	area = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		die("mmap");
	for (i = 0; i < n / PAGE; i++)
		fill_page(area + i * PAGE, i, 0);
}

static void setup_maps(void)
{
	long i;

	maps = calloc(count, sizeof(*maps));
	if (!maps)
		die("calloc");
	for (i = 0; i < count; i++) {
		/* alternate protections so that neighbours never merge */
		int prot = PROT_READ | (i % 2 ? PROT_WRITE : 0);

		maps[i] = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (maps[i] == MAP_FAILED)
			die("mmap");
		fill_page(maps[i], i, 0);
		if (mprotect(maps[i], PAGE, prot))
			die("mprotect");
	}
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void setup_threads(void)
{
	pthread_attr_t attr;
	long i;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 << 10);
	for (i = 0; i < count; i++) {
		pthread_t t;

		if (pthread_create(&t, &attr, sleeper, NULL))
			die("pthread_create");
	}
}

static void setup_fds(void)
{
	struct rlimit rl;
	char path[4096];
	long i;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		die("getrlimit");
	if (rl.rlim_cur < (rlim_t)count + 64) {
		if (rl.rlim_max < (rlim_t)count + 64) {
			fprintf(stderr, "RLIMIT_NOFILE hard limit %lu < %ld\n",
				(unsigned long)rl.rlim_max, count + 64);
			exit(1);
		}
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			die("setrlimit");
	}
	snprintf(path, sizeof(path), "%s/fds-file", dir);
	first_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (first_fd < 0 || write(first_fd, "0123456789", 10) != 10 || fstat(first_fd, &fd_st))
		die(path);
	for (i = 1; i < count; i++) {
		int fd = open(path, O_RDONLY);	/* one description each */

		if (fd != first_fd + i)
			die("open (fds not contiguous)");
		if (lseek(fd, i % 10, SEEK_SET) < 0)
			die("lseek");
	}
}

static void setup_tree(void)
{
	long i;

	kids = calloc(count, sizeof(*kids));
	if (!kids)
		die("calloc");
	for (i = 1; i < count; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			signal(SIGUSR1, SIG_IGN);
			signal(SIGUSR2, SIG_IGN);
			for (;;)
				pause();
		}
	}
}

static void change(const char *kind)
{
	unsigned long i, n;
	char name[64];

	gen++;
	if (!strcmp(kind, "anon")) {
		n = ((unsigned long)count << 20) / PAGE;
		for (i = 0; i < n; i += 100)
			fill_page(area + i * PAGE, i, gen);
	} else if (!strcmp(kind, "maps")) {
		for (i = 0; i < (unsigned long)count; i += 100)
			if (i % 2)
				fill_page(maps[i], i, gen);
	}
	snprintf(name, sizeof(name), "changed-%u", gen);
	touch(name);
}

static int count_threads(void)
{
	char line[256];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

static const char *check(const char *kind)
{
	static char why[256];
	unsigned long i, n;

	if (!strcmp(kind, "anon")) {
		n = ((unsigned long)count << 20) / PAGE;
		for (i = 0; i < n; i++)
			if (!page_ok(area + i * PAGE, i, page_gen(i))) {
				snprintf(why, sizeof(why), "page %lu of the area is wrong", i);
				return why;
			}
	} else if (!strcmp(kind, "maps")) {
		for (i = 0; i < (unsigned long)count; i++)
			if (!page_ok(maps[i], i, i % 2 ? page_gen(i) : 0)) {
				snprintf(why, sizeof(why), "mapping %lu is wrong", i);
				return why;
			}
	} else if (!strcmp(kind, "threads")) {
		if (count_threads() != count + 1) {
			snprintf(why, sizeof(why), "%d threads, not %ld", count_threads(), count + 1);
			return why;
		}
	} else if (!strcmp(kind, "fds")) {
		for (i = 0; i < (unsigned long)count; i++) {
			struct stat st;
			off_t want = i ? (off_t)(i % 10) : 10;

			if (fstat(first_fd + (int)i, &st) || st.st_ino != fd_st.st_ino
			    || lseek(first_fd + (int)i, 0, SEEK_CUR) != want) {
				snprintf(why, sizeof(why), "fd %lu is not the file at %ld", first_fd + i, (long)want);
				return why;
			}
		}
	} else if (!strcmp(kind, "tree")) {
		for (i = 1; i < (unsigned long)count; i++)
			if (kill(kids[i], 0) || waitpid(kids[i], NULL, WNOHANG) != 0) {
				snprintf(why, sizeof(why), "child %d is gone", kids[i]);
				return why;
			}
	}
	return NULL;
}

static void verdict(const char *kind)
{
	char path[4096], tmp[4200];
	const char *why = check(kind);
	FILE *f;

	snprintf(path, sizeof(path), "%s/verdict", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		die(tmp);
	if (why)
		fprintf(f, "FAIL %s\n", why);
	else
		fprintf(f, "OK\n");
	if (fclose(f) || rename(tmp, path))
		die(path);
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_change = 1;
	else
		want_verify = 1;
}

int main(int argc, char **argv)
{
	const char *kind;
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t all, none;

	if (argc != 4) {
		fprintf(stderr, "usage: %s DIR trivial|anon|maps|threads|fds|tree N\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	kind = argv[2];
	count = strtol(argv[3], NULL, 0);
	sigfillset(&all);
	sigemptyset(&none);
	/* helpers (threads, children) inherit a full mask: the signals are the root's */
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (!strcmp(kind, "anon"))
		setup_anon();
	else if (!strcmp(kind, "maps"))
		setup_maps();
	else if (!strcmp(kind, "threads"))
		setup_threads();
	else if (!strcmp(kind, "fds"))
		setup_fds();
	else if (!strcmp(kind, "tree"))
		setup_tree();
	else if (strcmp(kind, "trivial")) {
		fprintf(stderr, "unknown workload %s\n", kind);
		return 2;
	}
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	touch("ready");
	for (;;) {
		sigsuspend(&none);
		if (want_change) {
			want_change = 0;
			change(kind);
		}
		if (want_verify) {
			want_verify = 0;
			verdict(kind);
		}
	}
}
