/*
 * zdtmtst.h, CRIU's flavour: the test library API of CRIU's zdtm
 * (test/zdtm/lib/zdtmtst.h), so that a test written for CRIU compiles
 * against refcr's harness unmodified.  Built as lib/libzdtm-criu.a on top of
 * lib/libzdtm.a (the protocol: fork, pidfile, outfile, SIGTERM); selected
 * with -Ilib/criu by the harness for `--zdtm-static=DIR` tests and by
 * `refcr plugin-check --scenario` for a test that does not build against
 * refcr's own lib/zdtmtst.h.
 *
 * What differs from refcr's own library (lib/zdtmtst.h), as in CRIU:
 * - the SIGTERM handler is installed with SA_RESTART (a read() blocked
 *   across the dump is not interrupted by it);
 * - fail() prints the FAIL line and returns (the test returns 1 itself);
 *   pr_err()/pr_perror()/err() only print an "ERR:" line;
 * - datagen/datachk/datasum are CRIU's: random bytes with a running CRC-32
 *   (the caller starts it at ~0), datagen()/datachk() keep it in the last
 *   four bytes of the buffer;
 * - test_fork() is a plain fork(): the test waits for its children itself;
 * - TEST_OPTION(name, type, doc, is_required) declares a --name=VALUE
 *   option (types bool, int, uint, long, ulong, string); --pidfile and
 *   --outfile are the harness's, as always; --filename and --dirname
 *   default to NAME.test, the value CRIU's zdtm Makefile gives them.
 * Names refcr's library spells differently are mapped with macros
 * (test_init -> zdtm_criu_test_init, datagen -> zdtm_criu_datagen, ...).
 */
#ifndef _VIMITESU_H_
#define _VIMITESU_H_

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define INPROGRESS ".inprogress"

#ifndef PAGE_SIZE
#define PAGE_SIZE (unsigned int)(sysconf(_SC_PAGESIZE))
#endif

#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif

#ifndef CLONE_NEWUTS
#define CLONE_NEWUTS 0x04000000
#endif

#ifndef CLONE_NEWIPC
#define CLONE_NEWIPC 0x08000000
#endif

#define TEST_MSG_BUFFER_SIZE	2048

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

#define __stringify_1(x)	#x
#define __stringify(x)		__stringify_1(x)

#define __stack_aligned__	__attribute__((aligned(16)))

/* Optional in a test: `const char *test_doc = "...", *test_author = "...";` */
extern const char *test_doc __attribute__((weak));
extern const char *test_author __attribute__((weak));

/* set up the test: options, fork, outfile, SIGTERM handler (SA_RESTART) */
#define test_init zdtm_criu_test_init
extern void zdtm_criu_test_init(int argc, char **argv);
/* the same; CRIU's variant for tests run by an external helper */
#define test_ext_init zdtm_criu_test_init

/* a plain fork() with stdio flushed (id: CRIU's log suffix, unused here) */
#define test_fork() test_fork_id(-1)
extern int test_fork_id(int id);
/* state is ready: write the pidfile, release the launcher */
extern void test_daemon(void);
/* a line in the outfile */
extern void test_msg(const char *format, ...) __attribute__((__format__(__printf__, 1, 2)));
/* nonzero while SIGTERM has not arrived */
extern int test_go(void);
/* sleep until SIGTERM */
extern void test_waitsig(void);
/* pre-dump notifications: refcr's harness has none; both return 0 at once */
extern int test_wait_pre_dump(void);
extern int test_wait_pre_dump_ack(void);

/* data with a CRC-32: see above */
#define datagen zdtm_criu_datagen
#define datagen2 zdtm_criu_datagen2
#define datachk zdtm_criu_datachk
#define datasum zdtm_criu_datasum
extern void datagen(uint8_t *buffer, unsigned length, uint32_t *crc);
extern void datagen2(uint8_t *buffer, unsigned length, uint32_t *crc);
extern int datachk(const uint8_t *buffer, unsigned length, uint32_t *crc);
extern int datasum(const uint8_t *buffer, unsigned length, uint32_t *crc);

/* streaming helpers */
extern int set_nonblock(int fd, int on);
extern int pipe_in2out(int infd, int outfd, uint8_t *buffer, int length);
extern int read_data(int fd, unsigned char *buf, int len);
extern int write_data(int fd, const unsigned char *buf, int len);

/* command line options */
struct long_opt {
	const char *name;
	const char *type;
	const char *doc;
	int is_required;

	int (*parse_opt)(char *arg, void *value);
	void *value;
	struct long_opt *next;
};

extern void __push_opt(struct long_opt *opt);

#define TEST_OPTION(name, type, doc, is_required)					\
	param_check_##type(name, &(name));						\
	static struct long_opt __long_opt_##name = {					\
		#name, #type, doc, is_required, parse_opt_##type, &name };		\
	static void __init_opt_##name(void) __attribute__((constructor));		\
	static void __init_opt_##name(void)						\
	{										\
		(void)__check_##name;							\
		__push_opt(&__long_opt_##name);						\
	}

/* a compile-time check that the variable has the option type's C type */
#define __param_check(name, p, type) \
	static inline type *__check_##name(void) { return (p); }

extern void parseargs(int, char **);
extern int parse_opt_bool(char *param, void *arg);
#define param_check_bool(name, p) __param_check(name, p, int)
extern int parse_opt_int(char *param, void *arg);
#define param_check_int(name, p) __param_check(name, p, int)
extern int parse_opt_uint(char *param, void *arg);
#define param_check_uint(name, p) __param_check(name, p, unsigned int)
extern int parse_opt_long(char *param, void *arg);
#define param_check_long(name, p) __param_check(name, p, long)
extern int parse_opt_ulong(char *param, void *arg);
#define param_check_ulong(name, p) __param_check(name, p, unsigned long)
extern int parse_opt_string(char *param, void *arg);
#define param_check_string(name, p) __param_check(name, p, char *)

/* write pid (and a newline) into the --pidfile, atomically */
extern int write_pidfile(int pid);

/* messages: one line each in the outfile */
extern int test_log_init(const char *outfile, const char *suffix);
extern int zdtm_seccomp;
extern void test_fail_noexit(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
extern void test_pass(void);

#define pr_err(format, arg...) \
	test_msg("ERR: %s:%d: " format, __FILE__, __LINE__, ##arg)
#define pr_perror(format, arg...) \
	test_msg("ERR: %s:%d: " format " (errno = %d (%s))\n", __FILE__, __LINE__, ##arg, errno, strerror(errno))
#define err(format, arg...) \
	test_msg("ERR: %s:%d: " format " (errno = %d (%s))\n", __FILE__, __LINE__, ##arg, errno, strerror(errno))
#define fail(format, arg...) \
	test_fail_noexit(__FILE__, __LINE__, format, ##arg)
#define skip(format, arg...) \
	test_msg("SKIP: %s:%d: " format "\n", __FILE__, __LINE__, ##arg)
#define pass() test_pass()

/* wait for / signal an event between processes (a pipe the test keeps) */
typedef struct {
	unsigned long seed;
	int pipes[2];
} task_waiter_t;

extern void task_waiter_init(task_waiter_t *t);
extern void task_waiter_fini(task_waiter_t *t);
extern void task_waiter_wait4(task_waiter_t *t, unsigned int lockid);
extern void task_waiter_complete(task_waiter_t *t, unsigned int lockid);
extern void task_waiter_complete_current(task_waiter_t *t);

/* sockets */
extern int tcp_init_server(int family, int *port);
extern int tcp_accept_server(int sock);
extern int tcp_init_client(int family, char *servIP, unsigned short servPort);

struct sockaddr_un;
extern int unix_fill_sock_name(struct sockaddr_un *name, char *relFilename);

struct zdtm_tcp_opts {
	bool reuseaddr;
	bool reuseport;
	int flags;
};

extern int tcp_init_server_with_opts(int family, int *port, struct zdtm_tcp_opts *opts);
extern pid_t sys_clone_unified(unsigned long flags, void *child_stack, void *parent_tid,
			       void *child_tid, unsigned long newtls);

/* snprintf into an array that abort()s rather than truncate */
#define ssprintf(s, fmt, ...)							\
	({									\
		int ___ret;							\
		___ret = snprintf(s, sizeof(s), fmt, ##__VA_ARGS__);		\
		if (___ret >= (int)sizeof(s))					\
			abort();						\
		___ret;								\
	})

#endif /* _VIMITESU_H_ */
