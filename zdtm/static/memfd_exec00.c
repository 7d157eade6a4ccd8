/*
 * memfd_exec00: a memfd holding an executable (a copy of this test's own
 * binary) can still be run with execveat(fd, "", AT_EMPTY_PATH) after
 * restore (it used to fail with ETXTBSY: the restored fd was a reopened
 * writable description, which counts as a writer of the file).  The copy,
 * run with "--exit42", exits with status 42 at once; the fd keeps its
 * offset and flags (the harness compares fdinfo).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int mfd;

static void run_copy(const char *when)
{
	char *args[] = { "memfd_exec00", "--exit42", NULL }, *env[] = { NULL };
	int status;
	pid_t pid = fork();

	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		syscall(SYS_execveat, mfd, "", args, env, AT_EMPTY_PATH);
		_exit(errno == ETXTBSY ? 3 : 2);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 42)
		pr_err("%s: execveat of the memfd: status %#x%s", when, status,
		       WIFEXITED(status) && WEXITSTATUS(status) == 3 ? " (ETXTBSY)" : "");
}

int main(int argc, char **argv)
{
	char buf[65536];
	ssize_t n;
	int exe;

	if (argc == 2 && !strcmp(argv[1], "--exit42"))
		return 42;
	test_init(argc, argv);
	mfd = memfd_create("exe", MFD_CLOEXEC);
	exe = open("/proc/self/exe", O_RDONLY);
	if (mfd < 0 || exe < 0)
		fail("memfd_create / open exe");
	while ((n = read(exe, buf, sizeof(buf))) > 0)
		if (test_write_all(mfd, buf, n) != n)
			fail("write");
	close(exe);
	test_check_around_cr(run_copy);
	test_result();
	return 0;
}
