/*
 * busy_fork00: a process forking without pause is dumped with the children
 * it had at the freeze: running, exiting or zombies, each one whole.
 *
 * A thread forks a child, which checks a value it inherited and exits with
 * a status derived from its serial number, then waits for it; over and over
 * (also across the dump: a child may be dumped just forked, running, or a
 * zombie).  After restore (SIGTERM) the thread stops; every child must have
 * been reaped with its own status, and forking went on after the restore.
 * The .desc says children are transient: the harness compares only the
 * processes present both before the dump and after the restore.
 */
#include "zdtmtst.h"

#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;
static atomic_ulong forked, reaped, bad;
static volatile unsigned long inherited;

static void *forker(void *arg)
{
	unsigned long serial;
	int status;
	pid_t pid;

	(void)arg;
	for (serial = 1; !atomic_load(&stop); serial++) {
		inherited = serial * 7919;
		pid = fork();
		if (pid < 0) {
			atomic_fetch_add(&bad, 1);
			break;
		}
		if (pid == 0)
			_exit(inherited == serial * 7919 ? (int)(serial % 200) + 1 : 255);
		atomic_fetch_add(&forked, 1);
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != (int)(serial % 200) + 1)
			atomic_fetch_add(&bad, 1);
		else
			atomic_fetch_add(&reaped, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	unsigned long at_term;

	test_init(argc, argv);
	if (test_thread_create(&t, forker, NULL))
		fail("pthread_create");
	while (atomic_load(&reaped) < 50)
		usleep(1000);

	test_daemon();
	test_waitsig();

	at_term = atomic_load(&forked);
	usleep(200000);
	atomic_store(&stop, 1);
	if (test_thread_join(t))
		fail("the forker did not stop");
	test_msg("%lu children at SIGTERM, %lu forked, %lu reaped", at_term,
		 (unsigned long)atomic_load(&forked), (unsigned long)atomic_load(&reaped));
	if (atomic_load(&bad))
		pr_err("%lu child(ren) lost, or with a wrong status", (unsigned long)atomic_load(&bad));
	if (atomic_load(&forked) == at_term)
		pr_err("no child was forked after restore");
	test_result();
	return 0;
}
