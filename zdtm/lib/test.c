/*
 * zdtm test library: start-up protocol and result reporting.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

const char *test_name = "zdtm";
const char *test_pidfile;
const char *test_outfile;
volatile sig_atomic_t test_sigterm_seen;
int test_errors;

static int ready_pipe = -1;	/* write end, child side, until test_daemon() */
static pid_t test_pid;		/* the test process proper (the child) */
static int result_done;		/* a PASS/FAIL line has been printed */
static int daemon_done;		/* test_daemon() has run */

static void usage(void)
{
	fprintf(stderr, "usage: %s --pidfile=PATH --outfile=PATH\n", test_name);
	exit(2);
}

static const char *absolute(const char *path)
{
	char cwd[4096], *abs;

	if (path[0] == '/')
		return path;
	if (!getcwd(cwd, sizeof(cwd))) {
		perror("getcwd");
		exit(1);
	}
	if (asprintf(&abs, "%s/%s", cwd, path) < 0) {
		perror("asprintf");
		exit(1);
	}
	return abs;
}

static void parse_args(int argc, char **argv)
{
	int i;

	if (argc > 0 && argv[0]) {
		const char *s = strrchr(argv[0], '/');
		test_name = s ? s + 1 : argv[0];
	}

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;
		const char *val = NULL;

		if (!strncmp(a, "--pidfile", 9)) {
			dst = &test_pidfile;
			a += 9;
		} else if (!strncmp(a, "--outfile", 9)) {
			dst = &test_outfile;
			a += 9;
		} else {
			fprintf(stderr, "%s: unknown argument '%s'\n", test_name, argv[i]);
			usage();
		}

		if (*a == '=')
			val = a + 1;
		else if (*a == '\0' && i + 1 < argc)
			val = argv[++i];
		else {
			fprintf(stderr, "%s: bad argument '%s'\n", test_name, argv[i]);
			usage();
		}
		if (!*val) {
			fprintf(stderr, "%s: empty value for '%s'\n", test_name, argv[i]);
			usage();
		}
		*dst = val;
	}

	if (!test_pidfile || !test_outfile)
		usage();
	/* Tests may chdir() before test_daemon(): make the paths absolute. */
	test_pidfile = absolute(test_pidfile);
	test_outfile = absolute(test_outfile);
}

/* sa_flags of the SIGTERM handler: 0 (blocking calls get EINTR) unless a
 * caller sets it before test_init() (lib/criu: SA_RESTART, as CRIU's zdtm). */
int test_sigterm_sa_flags;

/* test_waitsig() sleeps on the flag's futex; the wake is async-signal-safe. */
static void wake_sigterm_waiters(void)
{
	syscall(SYS_futex, (int *)&test_sigterm_seen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void sigterm_handler(int sig)
{
	int saved = errno;

	(void)sig;
	test_sigterm_seen = 1;
	wake_sigterm_waiters();
	errno = saved;
}

static void at_exit(void)
{
	/* Only the test process itself reports; not helpers it forked. */
	if (getpid() != test_pid || result_done)
		return;
	result_done = 1;
	printf("FAIL: %s exited without a result\n", test_name);
	fflush(stdout);
}

/* Print the tail of the outfile on the parent's stderr (best effort). */
static void dump_outfile_tail(void)
{
	char buf[4096];
	ssize_t n;
	off_t size;
	int fd;

	fd = open(test_outfile, O_RDONLY);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf))
		lseek(fd, size - sizeof(buf), SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n > 0) {
		fprintf(stderr, "%s: --- %s ---\n", test_name, test_outfile);
		fwrite(buf, 1, n, stderr);
		fprintf(stderr, "%s: --- end ---\n", test_name);
	}
}

/*
 * Ready: also wait (a little) for the test to close its end, so that the
 * harness never snapshots the test with the ready pipe still open.  Only
 * the test process holds that end: forked children drop it (atfork).
 */
static void __attribute__((noreturn)) wait_closed_and_exit(int rfd)
{
	struct pollfd p = { .fd = rfd, .events = POLLIN };
	char c;

	while (poll(&p, 1, 5000) > 0 && read(rfd, &c, 1) > 0)
		;
	exit(0);
}

static void drop_ready_pipe(void)
{
	if (ready_pipe >= 0) {
		close(ready_pipe);
		ready_pipe = -1;
	}
}

static void __attribute__((noreturn)) parent_wait(pid_t child, int rfd)
{
	int status;
	char c;

	for (;;) {
		struct pollfd p = { .fd = rfd, .events = POLLIN };
		int r = poll(&p, 1, 200);

		if (r < 0 && errno != EINTR) {
			perror("poll");
			exit(1);
		}
		if (r > 0) {
			ssize_t n = read(rfd, &c, 1);

			if (n == 1)
				wait_closed_and_exit(rfd);
			if (n == 0)
				break;	/* every write end closed: child died */
			if (errno != EINTR && errno != EAGAIN) {
				perror("read ready pipe");
				exit(1);
			}
			continue;
		}
		/* The pipe can be held by a grandchild: watch the child too. */
		r = waitpid(child, &status, WNOHANG);
		if (r == child) {
			/* A byte may still be there. */
			fcntl(rfd, F_SETFL, O_NONBLOCK);
			if (read(rfd, &c, 1) == 1)
				exit(0);
			goto died;
		}
	}

	if (waitpid(child, &status, 0) != child) {
		fprintf(stderr, "%s: test process %d went away before it was ready\n",
			test_name, child);
		dump_outfile_tail();
		exit(1);
	}
died:
	if (WIFEXITED(status))
		fprintf(stderr, "%s: test process %d exited with status %d before it was ready\n",
			test_name, child, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "%s: test process %d was killed by signal %d (%s) before it was ready\n",
			test_name, child, WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		fprintf(stderr, "%s: test process %d died (status 0x%x) before it was ready\n",
			test_name, child, status);
	dump_outfile_tail();
	exit(1);
}

void test_init(int argc, char **argv)
{
	struct sigaction sa;
	int p[2], fd;
	pid_t pid;
	/*
	 * A job of the harness's shell (the shell_job flag, see
	 * harness/shelljob.py): no fork, no setsid(), stdin stays the terminal.
	 */
	int shell_job = getenv("ZDTM_SHELL_JOB") != NULL;

	parse_args(argc, argv);
	unsetenv("ZDTM_SHELL_JOB");

	/*
	 * As pid 1 of a pid namespace (the "ns" flavor: the harness made the
	 * namespaces and exec'd us as their init) there is no fork: exiting
	 * would end the namespace.  Nobody waits on a ready pipe either.
	 */
	if (getpid() == 1 || shell_job)
		goto init_proc;

	if (pipe2(p, O_CLOEXEC)) {
		perror("pipe");
		exit(1);
	}

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		parent_wait(pid, p[0]);
	}

	/* The child: becomes the test process. */
	close(p[0]);
	ready_pipe = p[1];
init_proc:
	pthread_atfork(NULL, NULL, drop_ready_pipe);
	test_pid = getpid();

	/* pid 1 may already lead its session (EPERM): that is fine. */
	if (!shell_job && setsid() < 0 && !(test_pid == 1 && errno == EPERM)) {
		perror("setsid");
		exit(1);
	}

	fd = shell_job ? 0 : open("/dev/null", O_RDONLY);
	if (fd < 0) {
		perror("open /dev/null");
		exit(1);
	}
	if (fd != 0) {
		dup2(fd, 0);
		close(fd);
	}

	fd = open(test_outfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0) {
		fprintf(stderr, "%s: can't open outfile %s: %m\n", test_name, test_outfile);
		exit(1);
	}
	if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
		fprintf(stderr, "%s: dup2: %m\n", test_name);
		exit(1);
	}
	if (fd > 2)
		close(fd);
	setvbuf(stdout, NULL, _IOLBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sigterm_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = test_sigterm_sa_flags;	/* default no SA_RESTART: blocking calls get EINTR */
	if (sigaction(SIGTERM, &sa, NULL)) {
		fprintf(stderr, "%s: sigaction: %m\n", test_name);
		exit(1);
	}

	atexit(at_exit);
	test_msg("%s: started, pid %d", test_name, (int)test_pid);
}

void test_daemon(void)
{
	char tmp[4096], buf[32];
	int fd, len;

	if (daemon_done || !test_pid)
		fail("test_daemon() called twice or before test_init()");
	daemon_done = 1;
	/* Every test_fork() child must have called test_child_ready(). */
	test_children_wait_ready();

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", test_pidfile) >= (int)sizeof(tmp))
		fail("pidfile path too long");
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail("can't create %s", tmp);
	if (test_write_all(fd, buf, len) != len)
		fail("can't write %s", tmp);
	if (close(fd))
		fail("can't close %s", tmp);
	if (rename(tmp, test_pidfile))
		fail("can't rename %s to %s", tmp, test_pidfile);

	test_msg("%s: ready", test_name);
	if (ready_pipe < 0)
		return;		/* pid 1: no launcher waits for us */
	if (write(ready_pipe, "R", 1) != 1)
		fail("can't notify the parent");
	close(ready_pipe);
	ready_pipe = -1;
}

int test_ready_fd(void)
{
	return ready_pipe;
}

int test_go(void)
{
	return !test_sigterm_seen;
}

/*
 * The wait changes no signal mask, not even for an instant: the harness may
 * snapshot /proc/PID/status at any moment after "ready" and compares SigBlk
 * across C/R.  (sigprocmask(SIGTERM) + sigsuspend showed SIGTERM blocked in
 * between, and a before-snapshot taken there differed from every after.)
 * The handler sets the flag and wakes its futex; FUTEX_WAIT returns at once
 * when the flag is already set, so no wake-up is lost.  A caller that blocks
 * SIGTERM itself keeps it blocked: the signal is looked for among the
 * pending ones and taken then (sigtimedwait lifts the block only once the
 * harness has sent it, i.e. after its checks).
 */
static void wait_blocked_sigterm(void)
{
	static const struct timespec tick = { 0, 20 * 1000 * 1000 }, no_wait;
	sigset_t pending, term;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	while (!test_sigterm_seen) {
		if (sigpending(&pending) == 0 && sigismember(&pending, SIGTERM)) {
			if (sigtimedwait(&term, NULL, &no_wait) == SIGTERM)
				test_sigterm_seen = 1;
			continue;
		}
		nanosleep(&tick, NULL);
	}
}

void test_waitsig(void)
{
	sigset_t cur;

	if (sigprocmask(SIG_BLOCK, NULL, &cur) == 0 && sigismember(&cur, SIGTERM)) {
		wait_blocked_sigterm();
	} else {
		while (!test_sigterm_seen)
			syscall(SYS_futex, (int *)&test_sigterm_seen, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	}
	errno = 0;	/* not the EINTR/EAGAIN of the wait in later messages */
}

static void vmsg(const char *prefix, const char *file, int line, int with_errno,
		 int err, const char *fmt, va_list ap)
{
	char msg[2048];
	size_t l;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	l = strlen(msg);
	while (l && msg[l - 1] == '\n')
		msg[--l] = '\0';

	if (file)
		printf("%s%s:%d: %s", prefix, file, line, msg);
	else
		printf("%s%s", prefix, msg);
	if (with_errno)
		printf(" (errno=%d: %s)", err, strerror(err));
	printf("\n");
	fflush(stdout);
}

void test_msg(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vmsg("", NULL, 0, 0, 0, fmt, ap);
	va_end(ap);
	errno = err;
}

void test_pass(void)
{
	if (test_errors && !result_done) {
		errno = 0;
		test_fail(test_name, 0, "pass() after %d failed check(s), see the ERR lines above",
			  test_errors);
	}
	if (result_done) {
		printf("ERR: pass() called after the result was printed\n");
		return;
	}
	result_done = 1;
	printf("PASS\n");
	fflush(stdout);
}

static void vfail(const char *file, int line, int err, const char *fmt, va_list ap)
{
	if (result_done || (test_pid && getpid() != test_pid))
		vmsg("ERR: ", file, line, 1, err, fmt, ap);
	else {
		result_done = 1;
		vmsg("FAIL: ", file, line, 1, err, fmt, ap);
	}
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vfail(file, line, err, fmt, ap);
	va_end(ap);
	exit(1);
}

void test_fail_noexit(const char *file, int line, const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vfail(file, line, err, fmt, ap);
	va_end(ap);
	errno = err;
}

void test_err(const char *file, int line, const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	test_errors++;
	va_start(ap, fmt);
	vmsg("ERR: ", file, line, 1, err, fmt, ap);
	va_end(ap);
	errno = err;
}

void test_result_at(const char *file, int line)
{
	if (test_errors) {
		errno = 0;
		test_fail(file, line, "%d check(s) failed, see the ERR lines above",
			  test_errors);
	}
	test_pass();
}

ssize_t test_read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return done ? (ssize_t)done : -1;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

ssize_t test_write_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return done ? (ssize_t)done : -1;
		}
		done += n;
	}
	return done;
}

ssize_t test_read_file(const char *path, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);

			if (!nb) {
				free(buf);
				close(fd);
				return -1;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return len;
}

int test_fdinfo_has(int fd, const char *what)
{
	char path[64], *text;
	int found;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (test_read_file(path, &text) < 0)
		return 0;
	found = strstr(text, what) != NULL;
	free(text);
	return found;
}

void test_write_text(const char *path, const char *fmt, ...)
{
	va_list ap;
	FILE *f = fopen(path, "w");
	int bad;

	if (!f)
		fail("can't create %s", path);
	va_start(ap, fmt);
	bad = vfprintf(f, fmt, ap) < 0;
	va_end(ap);
	if (fclose(f) || bad)
		fail("can't write %s", path);
}

void test_check_around_cr(void (*check_state)(const char *when))
{
	check_state("before");
	if (test_errors)
		fail("set-up");
	test_daemon();
	test_waitsig();
	check_state("after restore");
}
