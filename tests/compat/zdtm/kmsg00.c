/*
 * A plugin author's zdtm test, written for CRIU's test library
 * (zdtmtst.h: TEST_OPTION, test_init/test_daemon/test_waitsig, test_msg,
 * pass/fail, pr_err/pr_perror/err, datagen/datachk/datasum, task_waiter)
 * in CRIU's style.  It holds /dev/kmsg open for the plugin to dump, a child
 * blocked in read() across the C/R (SIGTERM has SA_RESTART, so the read is
 * not interrupted), and a buffer of checked data; it logs after restore,
 * which moves the offset of its own output file.  CRIU's library installs
 * the SIGTERM handler with SA_RESTART: checked before and after C/R.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "zdtmtst.h"

const char *test_doc = "Check that /dev/kmsg is restored by a plugin";
const char *test_author = "A plugin author <author@example.org>";

char *filename;
TEST_OPTION(filename, string, "file name", 1);
static int nonblock = 1;
TEST_OPTION(nonblock, bool, "open /dev/kmsg with O_NONBLOCK", 0);
static unsigned int blocks = 16;
TEST_OPTION(blocks, uint, "data blocks of 4096 bytes", 0);
static int iters = 1;
TEST_OPTION(iters, int, "unused, an int option", 0);
static long lval = -1;
TEST_OPTION(lval, long, "unused, a long option", 0);
static unsigned long ulval = 1;
TEST_OPTION(ulval, ulong, "unused, an unsigned long option", 0);

static int sigterm_restarts(void)
{
	struct sigaction sa;

	return !sigaction(SIGTERM, NULL, &sa) && (sa.sa_flags & SA_RESTART);
}

int main(int argc, char **argv)
{
	task_waiter_t t;
	uint32_t crc, sum, sum2;
	uint8_t *buf;
	int fd, p[2], status;
	char c;
	pid_t pid;
	struct stat st;

	test_init(argc, argv);
	if (!sigterm_restarts()) {
		fail("the SIGTERM handler has no SA_RESTART");
		return 1;
	}
	task_waiter_init(&t);

	if (pipe(p)) {
		pr_perror("pipe");
		return 1;
	}
	pid = test_fork();
	if (pid < 0) {
		pr_perror("fork");
		return 1;
	}
	if (pid == 0) {
		close(p[1]);
		task_waiter_complete_current(&t);
		/* blocked here across the dump and restore */
		if (read(p[0], &c, 1) != 1 || c != 'x') {
			pr_perror("child: read");
			_exit(1);
		}
		_exit(0);
	}
	close(p[0]);
	task_waiter_wait4(&t, pid);

	fd = open("/dev/kmsg", O_RDONLY | (nonblock ? O_NONBLOCK : 0));
	if (fd < 0) {
		pr_perror("open /dev/kmsg");
		return 1;
	}
	buf = malloc(blocks * 4096);
	if (!buf) {
		err("malloc");
		return 1;
	}
	crc = ~0;
	datagen(buf, blocks * 4096, &crc);
	sum = ~0;
	datasum(buf, blocks * 4096, &sum);
	if (write_pidfile(getpid()) == 0)
		test_msg("pidfile written early (%s)\n", filename);

	test_daemon();
	test_waitsig();

	test_msg("restored, checking (%d iters, %ld, %lu)\n", iters, lval, ulval);
	if (!sigterm_restarts()) {
		fail("the restored SIGTERM handler has no SA_RESTART");
		return 1;
	}
	crc = ~0;
	if (datachk(buf, blocks * 4096, &crc)) {
		fail("data corrupted");
		return 1;
	}
	sum2 = ~0;
	datasum(buf, blocks * 4096, &sum2);
	if (sum2 != sum) {
		fail("datasum %x, was %x", sum2, sum);
		return 1;
	}
	if (fstat(fd, &st) || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 11) {
		fail("fd %d is not /dev/kmsg any more", fd);
		return 1;
	}
	if (!!(fcntl(fd, F_GETFL) & O_NONBLOCK) != !!nonblock) {
		fail("O_NONBLOCK changed");
		return 1;
	}
	if (write(p[1], "x", 1) != 1 || waitpid(pid, &status, 0) != pid) {
		fail("cannot wake the child");
		return 1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fail("child blocked in read() did not survive C/R: status %#x", status);
		return 1;
	}
	task_waiter_fini(&t);
	pass();
	return 0;
}
