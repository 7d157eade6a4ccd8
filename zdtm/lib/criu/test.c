/*
 * CRIU's zdtm test library API (zdtmtst.h here) on top of refcr's
 * lib/libzdtm.a: options, start-up with SA_RESTART, pidfile, fork, waiters,
 * data with a CRC.  Costs nothing at run time beyond what refcr's library
 * does; see zdtmtst.h for where the semantics follow CRIU rather than
 * refcr's library.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>

#include "zdtmtst.h"

/* refcr's library, under the names it has there (lib/zdtmtst.h). */
#undef test_init
extern void test_init(int argc, char **argv);
extern const char *test_pidfile;
extern const char *test_name;
extern int test_sigterm_sa_flags;
extern ssize_t test_write_all(int fd, const void *buf, size_t len);

int zdtm_seccomp;

/* ------------------------------------------------------------ options --- */

static struct long_opt *opts;

void __push_opt(struct long_opt *opt)
{
	opt->next = opts;
	opts = opt;
}

static int parse_num(char *param, long long lo, unsigned long long hi, unsigned long long *out)
{
	char *end;

	errno = 0;
	if (lo < 0) {
		long long v = strtoll(param, &end, 0);

		if (errno || *end || v < lo || (v > 0 && (unsigned long long)v > hi))
			return -1;
		*out = (unsigned long long)v;
	} else {
		if (*param == '-')
			return -1;
		*out = strtoull(param, &end, 0);
		if (errno || *end || *out > hi)
			return -1;
	}
	return param[0] ? 0 : -1;
}

int parse_opt_bool(char *param, void *arg)
{
	static const char *const yes[] = { "1", "y", "yes", "on", "true" };
	static const char *const no[] = { "0", "n", "no", "off", "false" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(param, yes[i])) {
			*(int *)arg = 1;
			return 0;
		}
		if (!strcasecmp(param, no[i])) {
			*(int *)arg = 0;
			return 0;
		}
	}
	return -1;
}

#define NUM_PARSER(type, ctype, lo, hi)						\
	int parse_opt_##type(char *param, void *arg)				\
	{									\
		unsigned long long v;						\
		if (parse_num(param, lo, hi, &v))				\
			return -1;						\
		*(ctype *)arg = (ctype)v;					\
		return 0;							\
	}

NUM_PARSER(int, int, -2147483648LL, 2147483647ULL)
NUM_PARSER(uint, unsigned int, 0, 4294967295ULL)
NUM_PARSER(long, long, -9223372036854775807LL - 1, 9223372036854775807ULL)
NUM_PARSER(ulong, unsigned long, 0, ~0ULL)

int parse_opt_string(char *param, void *arg)
{
	*(char **)arg = param;
	return 0;
}

static void usage_exit(const char *why, const char *arg)
{
	struct long_opt *o;

	fprintf(stderr, "%s: %s%s%s\n", test_name ? test_name : "test", why, arg ? " " : "", arg ? arg : "");
	if (test_doc)
		fprintf(stderr, "%s\n", test_doc);
	fprintf(stderr, "options: --pidfile=PATH --outfile=PATH");
	for (o = opts; o; o = o->next)
		fprintf(stderr, " %s--%s=%s%s", o->is_required ? "" : "[", o->name, o->type,
			o->is_required ? "" : "]");
	fprintf(stderr, "\n");
	exit(1);
}

static struct long_opt *find_opt(const char *arg, size_t len)
{
	struct long_opt *o;

	for (o = opts; o; o = o->next)
		if (strlen(o->name) == len && !strncmp(o->name, arg, len))
			return o;
	return NULL;
}

/*
 * CRIU's zdtm Makefile gives a test that declares --filename or --dirname
 * the value NAME.test (in its cwd); refcr's harness passes only --pidfile
 * and --outfile, so the library supplies that same default.
 */
static int default_name(struct long_opt *o)
{
	char *v;

	if (strcmp(o->type, "string") || (strcmp(o->name, "filename") && strcmp(o->name, "dirname")))
		return 0;
	if (asprintf(&v, "%s.test", test_name) < 0)
		return 0;
	*(char **)o->value = v;
	return 1;
}

/*
 * Parse the test's own --NAME=VALUE (or --NAME VALUE) options out of argv;
 * --pidfile/--outfile stay for refcr's test_init().  Returns the new argc.
 */
static int take_options(int argc, char **argv)
{
	struct long_opt *o;
	int i, n = 1, nseen = 0;
	char **seen = calloc((size_t)argc + 1, sizeof(*seen));

	for (i = 1; i < argc; i++) {
		char *a = argv[i], *val, *eq;
		size_t len;

		if (strncmp(a, "--", 2))
			usage_exit("not an option:", a);
		a += 2;
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		if ((len == 7 && (!strncmp(a, "pidfile", 7) || !strncmp(a, "outfile", 7)))) {
			argv[n++] = argv[i];
			if (!eq && i + 1 < argc)
				argv[n++] = argv[++i];
			continue;
		}
		o = find_opt(a, len);
		if (!o)
			usage_exit("unknown option", argv[i]);
		if (eq)
			val = eq + 1;
		else if (!strcmp(o->type, "bool"))
			val = "1";
		else if (i + 1 < argc)
			val = argv[++i];
		else
			usage_exit("no value for", argv[i]);
		if (o->parse_opt(val, o->value))
			usage_exit("bad value for", argv[i]);
		seen[nseen++] = (char *)o->name;
	}
	for (o = opts; o; o = o->next) {
		int k, found = 0;

		for (k = 0; k < nseen; k++)
			found |= !strcmp(seen[k], o->name);
		if (!found && default_name(o))
			continue;
		if (o->is_required && !found)
			usage_exit("missing required option --", o->name);
	}
	free(seen);
	argv[n] = NULL;
	return n;
}

void parseargs(int argc, char **argv)
{
	take_options(argc, argv);
}

void zdtm_criu_test_init(int argc, char **argv)
{
	const char *s = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;

	test_name = s ? s + 1 : argv[0];
	argc = take_options(argc, argv);
	test_sigterm_sa_flags = SA_RESTART;
	test_init(argc, argv);
}

/* ------------------------------------------------------------- process --- */

int test_fork_id(int id)
{
	(void)id;
	fflush(stdout);
	fflush(stderr);
	return fork();
}

int write_pidfile(int pid)
{
	char tmp[4096], buf[32];
	int fd, len = snprintf(buf, sizeof(buf), "%d\n", pid);

	if (!test_pidfile || snprintf(tmp, sizeof(tmp), "%s.tmp", test_pidfile) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (test_write_all(fd, buf, (size_t)len) != len) {
		close(fd);
		return -1;
	}
	if (close(fd) || rename(tmp, test_pidfile))
		return -1;
	return 0;
}

int test_log_init(const char *outfile, const char *suffix)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s%s", outfile, suffix ? suffix : "") >= (int)sizeof(path))
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		return -1;
	if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
		close(fd);
		return -1;
	}
	if (fd > 2)
		close(fd);
	return 0;
}

int test_wait_pre_dump(void)
{
	return 0;
}

int test_wait_pre_dump_ack(void)
{
	return 0;
}

/* --------------------------------------------------------- task waiter --- */

void task_waiter_init(task_waiter_t *t)
{
	t->seed = (unsigned long)time(NULL) ^ (unsigned long)getpid();
	if (pipe(t->pipes)) {
		pr_perror("task_waiter_init: pipe");
		exit(1);
	}
}

void task_waiter_fini(task_waiter_t *t)
{
	close(t->pipes[0]);
	close(t->pipes[1]);
}

void task_waiter_wait4(task_waiter_t *t, unsigned int lockid)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 1000000 };
	unsigned int v;

	for (;;) {
		if (read(t->pipes[0], &v, sizeof(v)) != sizeof(v)) {
			if (errno == EINTR)
				continue;
			pr_perror("task_waiter_wait4: read");
			exit(1);
		}
		if (v == lockid)
			return;
		/* someone else's event: put it back, let its waiter have it */
		if (write(t->pipes[1], &v, sizeof(v)) != sizeof(v)) {
			pr_perror("task_waiter_wait4: write");
			exit(1);
		}
		ts.tv_nsec = 1000000 + (long)(rand_r((unsigned int *)&t->seed) % 1000000);
		nanosleep(&ts, NULL);
	}
}

void task_waiter_complete(task_waiter_t *t, unsigned int lockid)
{
	if (write(t->pipes[1], &lockid, sizeof(lockid)) != sizeof(lockid)) {
		pr_perror("task_waiter_complete: write");
		exit(1);
	}
}

void task_waiter_complete_current(task_waiter_t *t)
{
	task_waiter_complete(t, (unsigned int)getpid());
}

/* ---------------------------------------------------------------- data --- */

/* One byte into a running CRC-32 (reflected 0xEDB88320, no final xor). */
static void crc_byte(uint32_t *crc, uint8_t b)
{
	int k;

	*crc ^= b;
	for (k = 0; k < 8; k++)
		*crc = (*crc >> 1) ^ (0xEDB88320u & -(*crc & 1u));
}

void datagen2(uint8_t *buffer, unsigned length, uint32_t *crc)
{
	uint32_t rnd = 0;
	unsigned i;

	for (i = 0; i < length; i++) {
		if (i % 4 == 0)
			rnd = (uint32_t)mrand48();
		buffer[i] = (uint8_t)(rnd >> (8 * (i % 4)));
		crc_byte(crc, buffer[i]);
	}
}

void datagen(uint8_t *buffer, unsigned length, uint32_t *crc)
{
	unsigned body = length > 4 ? length - 4 : 0, i;

	datagen2(buffer, body, crc);
	for (i = 0; i < 4 && body + i < length; i++)
		buffer[body + i] = (uint8_t)(*crc >> (8 * i));
}

int datasum(const uint8_t *buffer, unsigned length, uint32_t *crc)
{
	unsigned i;

	for (i = 0; i < length; i++)
		crc_byte(crc, buffer[i]);
	return 0;
}

int datachk(const uint8_t *buffer, unsigned length, uint32_t *crc)
{
	unsigned body = length > 4 ? length - 4 : 0, i;
	uint32_t stored = 0;

	if (length < 4)
		return 1;
	datasum(buffer, body, crc);
	for (i = 0; i < 4; i++)
		stored |= (uint32_t)buffer[body + i] << (8 * i);
	if (stored != *crc) {
		test_msg("Read: %x, Expected: %x\n", stored, *crc);
		return 1;
	}
	return 0;
}
