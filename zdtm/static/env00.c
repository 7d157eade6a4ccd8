/*
 * env00: the environment and the arguments survive.
 *
 * Checked: /proc/self/cmdline and /proc/self/environ (the kernel's view of
 * mm->arg_* / env_*), /proc/self/auxv, the argv strings in memory, libc's
 * environ array including variables added with setenv()/putenv().
 */
#include "zdtmtst.h"

extern char **environ;

static char *dup_block(const char *path, ssize_t *len)
{
	char *buf;

	*len = test_read_file(path, &buf);
	if (*len < 0)
		fail("can't read %s", path);
	return buf;
}

static char **dup_strv(char **v, int *count)
{
	char **copy;
	int n = 0, i;

	while (v[n])
		n++;
	copy = calloc(n + 1, sizeof(char *));
	if (!copy)
		fail("calloc");
	for (i = 0; i < n; i++)
		if (!(copy[i] = strdup(v[i])))
			fail("strdup");
	*count = n;
	return copy;
}

static void cmp_block(const char *path, const char *before, ssize_t blen)
{
	ssize_t alen;
	char *after = dup_block(path, &alen);

	if (alen != blen || memcmp(before, after, blen))
		pr_err("%s changed: %zd bytes before, %zd after", path, blen, alen);
	free(after);
}

static char putenv_buf[] = "ZDTM_ENV00_PUT=put value with spaces";

int main(int argc, char **argv)
{
	ssize_t cmd_len, env_len, aux_len, l;
	char *cmdline, *environ_blk, *auxv, *joined;
	char **argv_copy, **env_copy;
	int argv_n, env_n, i;
	const char *v;

	test_init(argc, argv);

	if (setenv("ZDTM_ENV00", "some=value:/with/colons", 1))
		fail("setenv");
	if (putenv(putenv_buf))
		fail("putenv");

	cmdline = dup_block("/proc/self/cmdline", &cmd_len);
	environ_blk = dup_block("/proc/self/environ", &env_len);
	auxv = dup_block("/proc/self/auxv", &aux_len);
	argv_copy = dup_strv(argv, &argv_n);
	env_copy = dup_strv(environ, &env_n);

	/* Sanity: cmdline is argv joined with NULs. */
	joined = calloc(1, cmd_len + 1);
	if (!joined)
		fail("calloc");
	for (i = 0, l = 0; i < argc; i++) {
		size_t s = strlen(argv[i]) + 1;

		if (l + (ssize_t)s > cmd_len)
			fail("argv longer than /proc/self/cmdline");
		memcpy(joined + l, argv[i], s);
		l += s;
	}
	if (l != cmd_len || memcmp(joined, cmdline, cmd_len))
		fail("/proc/self/cmdline does not match argv at start");
	if (env_len == 0)
		fail("/proc/self/environ is empty: the harness should pass an environment");
	if (argc < 2)
		fail("argc %d", argc);

	test_daemon();
	test_waitsig();

	cmp_block("/proc/self/cmdline", cmdline, cmd_len);
	cmp_block("/proc/self/environ", environ_blk, env_len);
	cmp_block("/proc/self/auxv", auxv, aux_len);

	for (i = 0; i < argv_n; i++)
		if (!argv[i] || strcmp(argv[i], argv_copy[i]))
			pr_err("argv[%d] changed: '%s' -> '%s'", i, argv_copy[i],
			       argv[i] ? argv[i] : "(null)");
	if (argv[argv_n])
		pr_err("argv[%d] is not NULL", argv_n);

	for (i = 0; i < env_n; i++)
		if (!environ[i] || strcmp(environ[i], env_copy[i]))
			pr_err("environ[%d] changed: '%s' -> '%s'", i, env_copy[i],
			       environ[i] ? environ[i] : "(null)");
	if (environ[env_n])
		pr_err("environ has more entries than before");

	v = getenv("ZDTM_ENV00");
	if (!v || strcmp(v, "some=value:/with/colons"))
		pr_err("getenv(ZDTM_ENV00) = '%s'", v ? v : "(null)");
	v = getenv("ZDTM_ENV00_PUT");
	if (!v || strcmp(v, "put value with spaces"))
		pr_err("getenv(ZDTM_ENV00_PUT) = '%s'", v ? v : "(null)");

	test_result();
	return 0;
}
