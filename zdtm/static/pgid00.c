/*
 * pgid00: process groups of a tree survive, including one whose leader is
 * gone.
 *
 *   root   leads session and group R
 *   ├─ C    stays in group R
 *   ├─ G    setpgid(0, 0): leads group G
 *   │  └─ G1  in group G (inherited)
 *   ├─ J    joins group G (its leader is a sibling)
 *   ├─ L    leads group L, exits and is reaped before the dump
 *   ├─ M1   in group L
 *   └─ M2   in group L
 *
 * After restore each process checks its pgid (and sid, pid, ppid); the root
 * checks its children's pgids from the outside, that L's pid is free
 * (nothing of a restore helper left) while group L still exists, and it
 * signals groups G and L with SIGUSR1: each process counts what it got
 * (1 in groups G and L, 0 in group R).
 */
#include "zdtmtst.h"

#include <unistd.h>
#include <sys/wait.h>

static pid_t my_pid, my_ppid, my_pgid, my_sid;
static volatile sig_atomic_t usr1;
static int l_release = -1;	/* root: closing it lets L exit */

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

static void save_self(void)
{
	my_pid = getpid();
	my_ppid = getppid();
	my_pgid = getpgid(0);
	my_sid = getsid(0);
}

static void check_self(const char *who, int chk_ppid)
{
	if (getpid() != my_pid)
		pr_err("%s: pid %d, was %d", who, getpid(), my_pid);
	if (chk_ppid && getppid() != my_ppid)
		pr_err("%s: ppid %d, was %d", who, getppid(), my_ppid);
	if (getpgid(0) != my_pgid)
		pr_err("%s (%d): pgid %d, was %d", who, my_pid, getpgid(0), my_pgid);
	if (getsid(0) != my_sid)
		pr_err("%s (%d): sid %d, was %d", who, my_pid, getsid(0), my_sid);
}

static void child_body(const char *who, pid_t join, int want_usr1, int grandchild);

static void spawn_g1(int want_usr1)
{
	if (test_fork() == 0)
		child_body("G1", 0, want_usr1, 0);
}

/* join: group to join first (0: keep), want_usr1: expected SIGUSR1 count */
static void child_body(const char *who, pid_t join, int want_usr1, int grandchild)
{
	if (l_release >= 0)
		close(l_release);	/* only the root may hold L */
	if (join && setpgid(0, join) && getpgid(0) != join)
		fail("%s: setpgid(0, %d)", who, join);
	if (grandchild)
		spawn_g1(want_usr1);
	test_children_wait_ready();
	save_self();
	test_child_ready();
	test_waitsig();
	check_self(who, 1);
	if (usr1 != want_usr1)
		pr_err("%s (%d): got SIGUSR1 %d times, expected %d", who, my_pid,
		       (int)usr1, want_usr1);
	test_children_check();
	test_child_exit();
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	pid_t c, g, j, l, m1, m2;
	pid_t pg[5];
	int lp[2], status, i;
	char ch;

	test_init(argc, argv);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		fail("sigaction");

	c = test_fork();
	if (c == 0)
		child_body("C", 0, 0, 0);

	g = test_fork();
	if (g == 0)
		child_body("G", getpid(), 1, 1);
	if (setpgid(g, g) && getpgid(g) != g)
		fail("setpgid(G)");

	j = test_fork();
	if (j == 0)
		child_body("J", g, 1, 0);
	if (setpgid(j, g) && getpgid(j) != g)
		fail("setpgid(J)");

	/* L: leads group L until its members are in, then goes away. */
	if (pipe(lp))
		fail("pipe");
	l = fork();
	if (l < 0)
		fail("fork");
	if (l == 0) {
		close(lp[1]);
		setpgid(0, 0);
		while (read(lp[0], &ch, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(lp[0]);
	l_release = lp[1];
	if (setpgid(l, l) && getpgid(l) != l)
		fail("setpgid(L)");

	m1 = test_fork();
	if (m1 == 0)
		child_body("M1", l, 1, 0);
	if (setpgid(m1, l) && getpgid(m1) != l)
		fail("setpgid(M1)");
	m2 = test_fork();
	if (m2 == 0)
		child_body("M2", l, 1, 0);
	if (setpgid(m2, l) && getpgid(m2) != l)
		fail("setpgid(M2)");

	close(lp[1]);
	l_release = -1;
	if (waitpid(l, &status, 0) != l || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("group leader L did not exit cleanly");

	test_children_wait_ready();
	save_self();
	if (my_pgid != my_pid)
		fail("the root does not lead its group");
	pg[0] = c; pg[1] = g; pg[2] = j; pg[3] = m1; pg[4] = m2;
	for (i = 0; i < 5; i++)
		pg[i] = getpgid(pg[i]);
	if (pg[0] != my_pid || pg[1] != g || pg[2] != g || pg[3] != l || pg[4] != l)
		fail("groups not as planned: %d %d %d %d %d", pg[0], pg[1], pg[2], pg[3], pg[4]);
	if (kill(l, 0) == 0 || errno != ESRCH)
		fail("the leader of group L still exists");

	test_daemon();
	test_waitsig();

	check_self("root", 0);
	{
		pid_t who[5] = { c, g, j, m1, m2 };
		const char *name[5] = { "C", "G", "J", "M1", "M2" };

		for (i = 0; i < 5; i++)
			if (getpgid(who[i]) != pg[i])
				pr_err("%s (%d): pgid %d seen from the root, was %d", name[i],
				       who[i], getpgid(who[i]), pg[i]);
	}
	errno = 0;
	if (kill(l, 0) == 0 || errno != ESRCH)
		pr_err("pid %d (the gone leader of group L) exists after restore", l);
	if (kill(-l, 0))
		pr_err("group %d (leader gone) does not exist after restore", l);
	if (kill(-g, SIGUSR1))
		pr_err("kill(-%d, SIGUSR1)", g);
	if (kill(-l, SIGUSR1))
		pr_err("kill(-%d, SIGUSR1)", l);
	if (usr1)
		pr_err("the root got SIGUSR1 (it is in neither group)");
	test_children_check();
	test_result();
	return 0;
}
