/*
 * flock_nolocks00: without --file-locks a held lock makes the dump fail.
 *
 * The test holds an flock and a POSIX lock; the dump (.desc: crfail, no
 * --file-locks) must refuse, and the task runs on with both locks still
 * held (a child checks that it can take neither).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	int a, b, status;
	pid_t pid;

	test_init(argc, argv);

	a = open("flock_nolocks00.a", O_RDWR | O_CREAT, 0600);
	b = open("flock_nolocks00.b", O_RDWR | O_CREAT, 0600);
	if (a < 0 || b < 0)
		fail("open");
	if (flock(a, LOCK_EX) || fcntl(b, F_SETLK, &fl))
		fail("lock");

	test_daemon();
	test_waitsig();

	pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		int x = open("flock_nolocks00.a", O_RDONLY), y = open("flock_nolocks00.b", O_RDWR);

		fl.l_type = F_RDLCK;
		if (x < 0 || y < 0)
			_exit(3);
		_exit((flock(x, LOCK_SH | LOCK_NB) == 0) | (fcntl(y, F_SETLK, &fl) == 0) << 1);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		fail("waitpid");
	if (WEXITSTATUS(status) & 1)
		pr_err("the flock is gone");
	if (WEXITSTATUS(status) & 2)
		pr_err("the POSIX lock is gone");

	test_result();
	return 0;
}
