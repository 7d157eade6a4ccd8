/*
 * session00: sessions of a process tree survive.
 *
 *   root        leads session R (test_init's setsid)
 *   ├─ A        setsid(): leads session A
 *   │  ├─ A1    in session A (inherited), own process group
 *   │  │  └─ A1a  setsid(): leads session A1a, a grandchild's own session
 *   │  └─ A2    in session A
 *   ├─ B        stays in session R
 *   │  └─ B1    setsid()
 *   └─ C        setsid()
 *      └─ C1    in session C, group C
 *
 * After restore every process checks getsid(0), getpgid(0), getpid and
 * getppid against what it saw before, and each parent checks getsid() and
 * getpgid() of each of its children from the outside.
 */
#include "zdtmtst.h"

#include <unistd.h>

struct ids {
	pid_t pid, ppid, sid, pgid;
};

static struct ids self;
static struct ids kids[8];
static int nkids;

static void save(struct ids *i, pid_t pid)
{
	i->pid = pid;
	i->ppid = pid == getpid() ? getppid() : 0;
	i->sid = getsid(pid);
	i->pgid = getpgid(pid);
	if (i->sid < 0 || i->pgid < 0)
		fail("getsid/getpgid(%d)", pid);
}

static void check_ids(const char *who, int chk_ppid)
{
	int i;

	if (getpid() != self.pid)
		pr_err("%s: pid %d, was %d", who, getpid(), self.pid);
	if (chk_ppid && getppid() != self.ppid)
		pr_err("%s: ppid %d, was %d", who, getppid(), self.ppid);
	if (getsid(0) != self.sid)
		pr_err("%s (%d): sid %d, was %d", who, self.pid, getsid(0), self.sid);
	if (getpgid(0) != self.pgid)
		pr_err("%s (%d): pgid %d, was %d", who, self.pid, getpgid(0), self.pgid);
	for (i = 0; i < nkids; i++) {
		pid_t s = getsid(kids[i].pid), g = getpgid(kids[i].pid);

		if (s != kids[i].sid || g != kids[i].pgid)
			pr_err("%s (%d): child %d has sid %d pgid %d, had %d %d", who,
			       self.pid, kids[i].pid, s, g, kids[i].sid, kids[i].pgid);
	}
}

/* Parents record the ids of their children once these are ready. */
static void save_kids(void)
{
	int i;

	test_children_wait_ready();
	nkids = test_nr_children();
	for (i = 0; i < nkids; i++)
		save(&kids[i], test_child_pid(i));
}

typedef void (*setup_fn)(void);

static void run_child(const char *who, setup_fn setup, int pre_setsid)
{
	if (pre_setsid && setsid() < 0)
		fail("%s: setsid", who);
	if (setup)
		setup();
	save_kids();
	save(&self, getpid());
	test_child_ready();
	test_waitsig();
	check_ids(who, 1);
	test_children_check();
	test_child_exit();
}

static void spawn(const char *who, setup_fn setup, int pre_setsid)
{
	if (test_fork() == 0)
		run_child(who, setup, pre_setsid);
}

static void a1_setup(void)
{
	if (setpgid(0, 0))
		fail("A1: setpgid");
	spawn("A1a", NULL, 1);
}

static void a_setup(void)
{
	spawn("A1", a1_setup, 0);
	spawn("A2", NULL, 0);
}

static void b_setup(void)
{
	spawn("B1", NULL, 1);
}

static void c_setup(void)
{
	spawn("C1", NULL, 0);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);

	spawn("A", a_setup, 1);
	spawn("B", b_setup, 0);
	spawn("C", c_setup, 1);
	save_kids();
	save(&self, getpid());
	if (self.sid != getpid())
		fail("the root does not lead its session");

	test_daemon();
	test_waitsig();

	check_ids("root", 0);
	test_children_check();
	test_result();
	return 0;
}
