/*
 * zdtm test library for refcr.
 *
 * A scenario is a small C program:
 *
 *	int main(int argc, char **argv)
 *	{
 *		test_init(argc, argv);	// forks; the child returns here
 *		... set up state ...
 *		test_daemon();		// state ready: pidfile written
 *		test_waitsig();		// the harness dumps/restores, then SIGTERM
 *		... check state ...
 *		pass();			// or fail("...")
 *		return 0;
 *	}
 */
#ifndef ZDTM_TST_H
#define ZDTM_TST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Name of the test (basename of argv[0]), set by test_init(). */
extern const char *test_name;
/* The paths given on the command line. */
extern const char *test_pidfile;
extern const char *test_outfile;
/* Set by the SIGTERM handler. */
extern volatile sig_atomic_t test_sigterm_seen;

/*
 * Parse --pidfile=PATH --outfile=PATH (or "--pidfile PATH"), fork and
 * daemonize.  Returns in the child only; the parent exits once the child has
 * called test_daemon() (status 0) or died (status 1).
 */
void test_init(int argc, char **argv);

/* State is set up: write the pidfile and release the parent. */
void test_daemon(void);

/*
 * The fd of the pipe to the waiting parent; test_daemon() closes it, so a
 * test that lists its fds before test_daemon() should skip it.  -1 after.
 */
int test_ready_fd(void);

/* Nonzero while SIGTERM has not arrived yet. */
int test_go(void);

/* Sleep until SIGTERM arrives (returns at once if it already has). */
void test_waitsig(void);

/*
 * The common main() tail of a scenario that checks the same state before
 * and after C/R: check_state("before") (any pr_err() there fails the set-up),
 * test_daemon(), test_waitsig(), check_state("after restore").
 */
void test_check_around_cr(void (*check_state)(const char *when));

/* Print "PASS" as the result line (a FAIL if pr_err() was called). */
void test_pass(void);
/* Print "FAIL: file:line: message (errno=N: strerror)" and exit(1). */
void test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
/* test_fail() without the exit (CRIU's fail(): the test returns itself). */
void test_fail_noexit(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* sa_flags for the SIGTERM handler test_init() installs (default 0). */
extern int test_sigterm_sa_flags;
/*
 * Record a failed check without stopping: prints an "ERR: ..." info line and
 * counts it.  test_result() then prints PASS, or FAIL naming the count.
 */
void test_err(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
extern int test_errors;
void test_result_at(const char *file, int line);
#define test_result() test_result_at(__FILE__, __LINE__)

/* An informational line in the outfile. */
void test_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define pass()		test_pass()
#define fail(...)	test_fail(__FILE__, __LINE__, __VA_ARGS__)
#define pr_err(...)	test_err(__FILE__, __LINE__, __VA_ARGS__)

/* fail() unless cond holds. */
#define check(cond, ...)						\
	do {								\
		if (!(cond))						\
			fail(__VA_ARGS__);				\
	} while (0)

/* Deterministic data patterns. */
void datagen(void *buf, size_t len, uint64_t seed);
/* 0 if buf holds datagen(len, seed); nonzero otherwise. */
int datachk(const void *buf, size_t len, uint64_t seed);
/* Like datachk, returns the offset of the first bad byte or -1 if all match. */
ssize_t datachk_off(const void *buf, size_t len, uint64_t seed);
/* Fill a region of a pattern that starts at pattern offset 'off'. */
void datagen_at(void *buf, size_t len, uint64_t seed, size_t off);
int datachk_at(const void *buf, size_t len, uint64_t seed, size_t off);

uint32_t crc32(uint32_t crc, const void *buf, size_t len);

/* /proc/self/maps helpers */
struct test_vma {
	unsigned long start, end;
	char perms[5];
	unsigned long long pgoff;
	unsigned int dev_major, dev_minor;
	unsigned long ino;
	char path[512];
	char vmflags[160];	/* from smaps ("rd wr mr mw me ..."), or "" */
};
/* Find the VMA containing addr; 0 on success, -1 if none. */
int test_find_vma(const void *addr, struct test_vma *vma);
/*
 * Collect all VMAs that intersect [start, end) into out (up to max);
 * returns the count or -1.
 */
int test_collect_vmas(unsigned long start, unsigned long end,
		      struct test_vma *out, int max);
/* Like test_collect_vmas, from /proc/self/smaps, filling vmflags too. */
int test_collect_smaps(unsigned long start, unsigned long end,
		       struct test_vma *out, int max);
/*
 * Compare two VMA lists (bounds, perms, path, file offset, inode of named
 * files, and VmFlags when both lists have them, ignoring the flags "sd",
 * "ac" and "nr" that a restore may legitimately change);
 * pr_err()s each difference and returns their count.
 */
int test_cmp_vmas(const char *what, const struct test_vma *a, int na,
		  const struct test_vma *b, int nb);

/* Read a whole file into a malloc()ed buffer; returns length or -1. */
ssize_t test_read_file(const char *path, char **out);
/* whether /proc/self/fdinfo/FD contains what */
int test_fdinfo_has(int fd, const char *what);

/* Full read/write that retry on short transfers and EINTR. */
ssize_t test_read_all(int fd, void *buf, size_t len);
ssize_t test_write_all(int fd, const void *buf, size_t len);

/*
 * Process trees.  The harness signals only the root; each process forwards
 * "check now" to the children it made with test_fork() and collects them.
 *
 *	pid = test_fork();
 *	if (pid == 0) {
 *		... set up ...
 *		test_child_ready();	// after its own children are ready
 *		test_waitsig();
 *		... checks with pr_err() ...
 *		test_children_check();	// its own children, if any
 *		test_child_exit();	// status 0 iff no check failed
 *	}
 *	...
 *	test_daemon();			// waits for every child's readiness
 *	test_waitsig();
 *	test_children_check();		// SIGTERM each child, waitpid, pr_err
 *	test_result();
 *
 * Up to 64 children per process.  Children of plain fork() are not
 * tracked (zombie and process-group scenarios manage those themselves).
 * As pid 1 (ns flavor) the test does not reap processes reparented to it.
 */
pid_t test_fork(void);
/* In a test_fork() child: own children are ready, tell the parent. */
void test_child_ready(void);
/* Wait until every test_fork() child called test_child_ready(); fail() if
 * one died first.  test_daemon() and test_child_ready() call it. */
void test_children_wait_ready(void);
/* Send sig to every child not yet waited for. */
void test_children_kick(int sig);
/* Wait (up to 30 s) for every child; pr_err() each one that did not exit
 * 0 (or hung, it is then killed); returns the number of such children. */
int test_children_wait(void);
/* test_children_kick(SIGTERM) + test_children_wait(). */
int test_children_check(void);
/* In a child: exit(0) if no pr_err() happened in it, else exit(1). */
void test_child_exit(void) __attribute__((noreturn));
int test_nr_children(void);
pid_t test_child_pid(int i);	/* in test_fork() order; -1 if none */

/*
 * pthread_create() with SIGTERM blocked in the new thread, so that the
 * harness's process-directed SIGTERM always reaches the main thread's
 * test_waitsig().
 */
#include <pthread.h>
int test_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

/*
 * A thread's failed checks: a thread other than the main one must not
 * print (its line could interleave with the verdict), so it notes them
 * with test_note() ("; "-separated) and the main thread reports them after
 * test_thread_join() (10 s at most; 0 when the thread finished).
 */
struct test_notes {
	int errors;
	char msg[512];
};
void test_note(struct test_notes *n, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int test_thread_join(pthread_t t);

/*
 * Make sure the namespaces in flags (CLONE_NEWUTS, CLONE_NEWIPC) are the
 * test's own, so it can change them without touching the host or another
 * test: as pid 1 (ns flavor) they already are; otherwise (h flavor) unshare
 * them.  Call it after test_init(), before creating state.  Returns 1 if it
 * unshared, 0 if they were already private; fail()s on error.
 */
int test_private_ns(int flags);

/*
 * Sockets: bring the loopback link up (a fresh net namespace has it down),
 * and an int socket option (pr_err() and -1 on failure).
 */
void test_lo_up(void);
int test_getsockopt_int(int fd, int level, int opt);

/*
 * TCP streams: a socket's state (tcpi_state, -1 on error); waiting up to 10 s
 * for a state (0, else -1); writing the datagen pattern of seed without
 * blocking until the send buffer stays full (the bytes written); and checks
 * that pr_err() naming `who`: the next len bytes are the pattern of seed from
 * offset off (0 if so, else -1), EOF comes (within 10 s), a send fails with EPIPE.
 */
int test_tcp_state(int fd);
int test_tcp_wait_state(int fd, int want);
size_t test_tcp_fill(int fd, uint64_t seed);
int test_expect_pattern(int fd, size_t len, uint64_t seed, size_t off, const char *who);
void test_expect_eof(int fd, const char *who);
void test_expect_epipe(int fd, const char *who);

/*
 * A unix socket of type connected to NAME in the work dir (the cwd) by its
 * absolute path, e.g. a peer's (harness/peers.py); fail()s on error.  With
 * path non-NULL the address used is copied there (sizeof sun_path).
 */
int test_unix_connect(const char *name, int type, char *path);
/*
 * Say WORD (a line) on a stream socket and read the answer of the
 * line_server peer: WORD in upper case.  0 if right, else -1 with pr_err().
 */
int test_ask_line(int sk, const char *word);
/* pr_err() unless sk is connected to the unix socket at path (getpeername). */
void test_check_unix_peer(int sk, const char *path);
/* An fd passed (SCM_RIGHTS, with one byte) over the stream socket sk; fail()s without one. */
int test_recv_fd(int sk);
/* The inode of what fd refers to (socket:[INO], pipe:[INO]); fail()s on error. */
unsigned long test_fd_inode(int fd);
/* Write a whole file (e.g. cr-opts.json); fail()s on error. */
void test_write_text(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* ZDTM_TST_H */
