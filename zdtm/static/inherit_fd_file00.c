/*
 * inherit_fd_file00: a log file the task appends to is replaced at restore by
 * the file the caller hands in with --inherit-fd fd[N]:PATH (the harness opens
 * handed.log in the work dir O_WRONLY|O_APPEND: cr-opts.json "inherit").
 *
 * Before the dump "before" goes into orig.log.  After restore the same fd number
 * is handed.log (same inode), keeps its flags, and "after" written through it
 * lands in handed.log only: orig.log still holds exactly "before".
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void expect(const char *path, const char *want)
{
	char *text = NULL;
	ssize_t n = test_read_file(path, &text);

	if (n != (ssize_t)strlen(want) || memcmp(text, want, n))
		pr_err("%s holds '%.*s', expected '%s'", path, (int)(n > 0 ? n : 0), n > 0 ? text : "", want);
	free(text);
}

int main(int argc, char **argv)
{
	char cwd[256];
	struct stat st, handed;
	int fd, flags;

	test_init(argc, argv);
	if (!getcwd(cwd, sizeof(cwd)))
		fail("getcwd");
	fd = open("orig.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0 || write(fd, "before\n", 7) != 7)
		fail("orig.log");
	flags = fcntl(fd, F_GETFL);
	test_write_text("cr-opts.json", "{\"inherit\": [{\"resource\": \"%s/orig.log\", \"append\": \"handed.log\"}]}\n",
			cwd);

	test_daemon();
	test_waitsig();

	if (fstat(fd, &st) || stat("handed.log", &handed))
		pr_err("stat");
	else if (st.st_ino != handed.st_ino)
		pr_err("fd %d is inode %lu, not handed.log (%lu)", fd, (unsigned long)st.st_ino,
		       (unsigned long)handed.st_ino);
	if (fcntl(fd, F_GETFL) != flags)
		pr_err("flags %#x, expected %#x", fcntl(fd, F_GETFL), flags);
	if (write(fd, "after\n", 6) != 6)
		pr_err("write after restore");
	expect("handed.log", "after\n");
	expect("orig.log", "before\n");
	test_result();
	return 0;
}
