/*
 * The processes bench/dump_restore.py checkpoints.
 *
 *   workload DIR KIND N
 *
 * KIND and N:  trivial 0 | anon MIB | maps COUNT | threads COUNT | fds COUNT | tree PROCS
 *               | jvm THREADS | pipes PROCS
 *
 * jvm: THREADS pthreads with the default (8 MiB) stacks, each with 2 MiB of
 * its own malloc'd heap (glibc gives threads their own arenas, as a JVM's
 * threads have TLABs) parked on a condition variable, a few in timed waits;
 * pipes: a tree of PROCS processes (the root and PROCS-1 children) in a
 * ring of pipes: child i reads a counter from pipe i-1, adds one and writes
 * it to pipe i; the check sends 0 round the ring and wants PROCS-1 back.
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
#include <poll.h>
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
#include <time.h>
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
/* tree, pipes */
static pid_t *kids;
/* jvm */
struct jthread { pthread_t t; unsigned char *heap; long id; };
static struct jthread *jts;
static pthread_mutex_t jlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jcond = PTHREAD_COND_INITIALIZER;
#define JHEAP (2UL << 20)
/* pipes: the root writes ring_out, reads ring_in */
static int ring_out = -1, ring_in = -1;

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

static int count_threads(void);

static void *jvm_thread(void *arg)
{
	struct jthread *j = arg;
	unsigned long i;

	j->heap = malloc(JHEAP);
	if (!j->heap)
		die("malloc");
	for (i = 0; i < JHEAP; i++)
		j->heap[i] = (unsigned char)(i * 7 + (unsigned long)j->id);
	pthread_mutex_lock(&jlock);
	for (;;) {
		if (j->id % 10 == 0) {		/* a few "GC / JIT" threads in timed waits */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&jcond, &jlock, &ts);
		} else {
			pthread_cond_wait(&jcond, &jlock);
		}
	}
	return NULL;
}

static void setup_jvm(void)
{
	long i;

	jts = calloc(count, sizeof(*jts));
	if (!jts)
		die("calloc");
	for (i = 0; i < count; i++) {
		jts[i].id = i;
		if (pthread_create(&jts[i].t, NULL, jvm_thread, &jts[i]))
			die("pthread_create");
	}
	for (;;) {			/* ready when every heap is written */
		for (i = 0; i < count; i++)
			if (!__atomic_load_n(&jts[i].heap, __ATOMIC_ACQUIRE)
			    || jts[i].heap[JHEAP - 1] != (unsigned char)((JHEAP - 1) * 7 + (unsigned long)i))
				break;
		if (i == count)
			return;
		usleep(1000);
	}
}

static void ring_child(int in, int out)
{
	long v;

	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	for (;;) {
		if (read(in, &v, sizeof(v)) != sizeof(v))
			_exit(1);
		v++;
		if (write(out, &v, sizeof(v)) != sizeof(v))
			_exit(1);
	}
}

static void setup_pipes(void)
{
	int (*p)[2];
	long i, j;

	kids = calloc(count, sizeof(*kids));
	p = calloc(count, sizeof(*p));
	if (!kids || !p)
		die("calloc");
	for (i = 0; i < count; i++)
		if (pipe(p[i]))
			die("pipe");
	for (i = 1; i < count; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			for (j = 0; j < count; j++) {
				if (j != i - 1)
					close(p[j][0]);
				if (j != i)
					close(p[j][1]);
			}
			ring_child(p[i - 1][0], p[i][1]);
		}
	}
	ring_out = p[0][1];
	ring_in = p[count - 1][0];
	for (j = 0; j < count; j++) {
		if (p[j][0] != ring_in)
			close(p[j][0]);
		if (p[j][1] != ring_out)
			close(p[j][1]);
	}
	free(p);
}

static const char *ring_check(void)
{
	static char why[128];
	struct pollfd pfd = { .fd = ring_in, .events = POLLIN };
	long v = 0;

	if (write(ring_out, &v, sizeof(v)) != sizeof(v))
		return "cannot write into the ring";
	if (poll(&pfd, 1, 30000) != 1 || read(ring_in, &v, sizeof(v)) != sizeof(v))
		return "nothing came back round the ring";
	if (v != count - 1) {
		snprintf(why, sizeof(why), "the ring counted %ld, not %ld", v, count - 1);
		return why;
	}
	return NULL;
}

static const char *jvm_check(void)
{
	static char why[128];
	unsigned long i;
	long t;

	if (count_threads() != count + 1) {
		snprintf(why, sizeof(why), "%d threads, not %ld", count_threads(), count + 1);
		return why;
	}
	for (t = 0; t < count; t++)
		for (i = 0; i < JHEAP; i += 997)
			if (jts[t].heap[i] != (unsigned char)(i * 7 + (unsigned long)t)) {
				snprintf(why, sizeof(why), "thread %ld's heap is wrong at %lu", t, i);
				return why;
			}
	pthread_mutex_lock(&jlock);		/* the threads still take and give up the lock */
	pthread_cond_broadcast(&jcond);
	pthread_mutex_unlock(&jlock);
	return NULL;
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
	} else if (!strcmp(kind, "jvm")) {
		return jvm_check();
	} else if (!strcmp(kind, "pipes")) {
		const char *bad = ring_check();

		if (bad)
			return bad;
		for (i = 1; i < (unsigned long)count; i++)
			if (kill(kids[i], 0) || waitpid(kids[i], NULL, WNOHANG) != 0) {
				snprintf(why, sizeof(why), "child %d is gone", kids[i]);
				return why;
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
		fprintf(stderr, "usage: %s DIR trivial|anon|maps|threads|fds|tree|jvm|pipes N\n", argv[0]);
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
	else if (!strcmp(kind, "jvm"))
		setup_jvm();
	else if (!strcmp(kind, "pipes"))
		setup_pipes();
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
