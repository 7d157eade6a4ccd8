/*
 * flock00: flock() locks survive (with --file-locks).
 *
 * An exclusive flock on one file and a shared one on another.  After
 * restore a child (started then, with its own descriptions) cannot take
 * either exclusively and can share the shared one, so the locks are held by
 * the restored process again; they are also in its fdinfo.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int probe(void)
{
	int a = open("flock00.ex", O_RDONLY), s = open("flock00.sh", O_RDONLY), bad = 0;

	if (a < 0 || s < 0)
		return 100;
	if (flock(a, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		bad |= 1;
	if (flock(s, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		bad |= 2;
	if (flock(s, LOCK_SH | LOCK_NB))
		bad |= 4;
	return bad;
}

int main(int argc, char **argv)
{
	int ex, sh, status;
	pid_t pid;

	test_init(argc, argv);

	ex = open("flock00.ex", O_RDWR | O_CREAT, 0600);
	sh = open("flock00.sh", O_RDWR | O_CREAT, 0600);
	if (ex < 0 || sh < 0)
		fail("open");
	if (flock(ex, LOCK_EX) || flock(sh, LOCK_SH))
		fail("flock");

	test_daemon();
	test_waitsig();

	if (!test_fdinfo_has(ex, "FLOCK  ADVISORY  WRITE"))
		pr_err("no exclusive flock in the fdinfo");
	if (!test_fdinfo_has(sh, "FLOCK  ADVISORY  READ"))
		pr_err("no shared flock in the fdinfo");
	pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0)
		_exit(probe());
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		fail("waitpid");
	if (WEXITSTATUS(status) & 1)
		pr_err("another process got a lock on the exclusively locked file");
	if (WEXITSTATUS(status) & 2)
		pr_err("another process got an exclusive lock on the shared file");
	if (WEXITSTATUS(status) & 4)
		pr_err("another process could not share the shared lock");
	if (WEXITSTATUS(status) == 100)
		pr_err("the probe could not open the files");

	test_result();
	return 0;
}
