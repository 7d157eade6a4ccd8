/*
 * lease_break00: leases being broken come back being broken (--file-locks),
 * with no signal of the restore's own making, and a leased file's owner
 * (F_SETOWN_EX, F_SETSIG) is the one the task set, not the lease's taker.
 *
 * The root takes a write lease on "down" and a read lease on "gone" (its
 * break signal set to SIGRTMIN+2 with F_SETSIG), then starts both breaks as
 * an opener does: an O_NONBLOCK open for reading of "down" (the write lease
 * is to become a read lease) and one for writing of "gone" (the lease is to
 * go); both fail with EWOULDBLOCK and the root gets one break signal each.
 * A third file, "owned", has an active write lease whose owner the root
 * then hands to its child (F_SETOWN_EX, F_SETSIG SIGUSR2).  The child
 * shares the descriptions of "down" and "gone" (forked after the opens,
 * before the leases); "owned" is opened by the root after the fork.
 *
 * After restore: F_GETLEASE gives what the breaks lead to (F_RDLCK,
 * F_UNLCK) and fdinfo says BREAKING; no more break signals arrived; an
 * opener still runs into both breaks; the root ends them (downgrade,
 * release) and then opens both files; a break of "owned" signals the child
 * with SIGUSR2 and si_fd, not the root.  The harness compares each fd's
 * lock lines (BREAKING READ / UNLCK, ACTIVE WRITE) before and after.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#define BREAK_SIG (SIGRTMIN + 2)

static int down, gone, owned;
static volatile sig_atomic_t sigio_seen, rt_seen, rt_fd = -1, usr2_seen;

static void on_sigio(int sig)
{
	sigio_seen++;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	rt_seen++;
	rt_fd = si->si_fd;
}

static void on_usr2(int sig)
{
	usr2_seen++;
}

static int open_file(const char *name)
{
	int fd;

	test_write_text(name, "%s\n", name);
	fd = open(name, O_RDONLY);
	if (fd < 0)
		fail("open %s", name);
	return fd;
}

static void take_lease(int fd, const char *name, int lease)
{
	if (fcntl(fd, F_SETLEASE, lease))
		fail("F_SETLEASE %s", name);
}

/* An opener running into the lease: it must get EWOULDBLOCK. */
static void run_into(const char *name, int mode, const char *when)
{
	int fd = open(name, mode | O_NONBLOCK);

	if (fd >= 0) {
		close(fd);
		pr_err("%s: an open of %s went through the lease", when, name);
	} else if (errno != EWOULDBLOCK)
		pr_err("%s: open %s", when, name);
}

static void expect_lease(int fd, const char *name, int want, const char *state, const char *when)
{
	int got = fcntl(fd, F_GETLEASE);

	if (got != want)
		pr_err("%s: F_GETLEASE of %s is %d, not %d", when, name, got, want);
	if (test_fdinfo_has(fd, state) != 1)
		pr_err("%s: fdinfo of %s has no \"%s\"", when, name, state);
}

static void child(void)
{
	sigset_t usr2;
	siginfo_t si;
	struct timespec ten = { 10, 0 };

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);
	test_child_ready();
	test_waitsig();
	/* the root broke "owned" before it sent SIGTERM */
	if (sigtimedwait(&usr2, &si, &ten) != SIGUSR2)
		pr_err("the child, owner of owned, got no SIGUSR2 from its lease break");
	else if (si.si_fd != owned)
		pr_err("the child's SIGUSR2 names fd %d, not %d", si.si_fd, owned);
	test_child_exit();
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_rt, .sa_flags = SA_SIGINFO };
	struct f_owner_ex to;
	pid_t kid;
	int fd;

	test_init(argc, argv);
	signal(SIGIO, on_sigio);
	signal(SIGUSR2, on_usr2);
	sigaction(BREAK_SIG, &sa, NULL);

	/* the child shares two descriptions: the leases belong to them, the
	 * root takes them (fdinfo names the root in the child too); "owned" is
	 * the root's alone, so its owner is set by nobody else on restore */
	down = open_file("down");
	gone = open_file("gone");
	owned = dup(down);	/* reserves the number "owned" gets after the fork */
	kid = test_fork();
	if (kid == 0)
		child();
	close(owned);
	if (open_file("owned") != owned)
		fail("owned did not get fd %d", owned);

	take_lease(down, "down", F_WRLCK);
	take_lease(gone, "gone", F_RDLCK);
	if (fcntl(gone, F_SETSIG, BREAK_SIG))
		fail("F_SETSIG");
	take_lease(owned, "owned", F_WRLCK);
	to.type = F_OWNER_PID;
	to.pid = kid;
	if (fcntl(owned, F_SETOWN_EX, &to) || fcntl(owned, F_SETSIG, SIGUSR2))
		fail("F_SETOWN_EX to the child");

	run_into("down", O_RDONLY, "before");
	run_into("gone", O_WRONLY, "before");
	if (sigio_seen != 1 || rt_seen != 1 || rt_fd != gone)
		fail("break signals before: SIGIO %d, SIGRTMIN+2 %d (fd %d)",
		     (int)sigio_seen, (int)rt_seen, (int)rt_fd);
	expect_lease(down, "down", F_RDLCK, "BREAKING  READ", "before");
	expect_lease(gone, "gone", F_UNLCK, "BREAKING  UNLCK", "before");

	test_daemon();
	test_waitsig();

	expect_lease(down, "down", F_RDLCK, "BREAKING  READ", "after");
	expect_lease(gone, "gone", F_UNLCK, "BREAKING  UNLCK", "after");
	expect_lease(owned, "owned", F_WRLCK, "ACTIVE    WRITE", "after");
	usleep(100000);
	if (sigio_seen != 1 || rt_seen != 1 || usr2_seen)
		pr_err("break signals after restore: SIGIO %d, SIGRTMIN+2 %d, SIGUSR2 %d (1, 1, 0 expected)",
		       (int)sigio_seen, (int)rt_seen, (int)usr2_seen);
	run_into("down", O_RDONLY, "after");
	run_into("gone", O_WRONLY, "after");

	if (fcntl(down, F_SETLEASE, F_RDLCK))
		pr_err("downgrading the lease of down");
	if (fcntl(gone, F_SETLEASE, F_UNLCK))
		pr_err("releasing the lease of gone");
	if ((fd = open("down", O_RDONLY | O_NONBLOCK)) < 0)
		pr_err("open down for reading after the downgrade");
	else
		close(fd);
	if ((fd = open("gone", O_WRONLY | O_NONBLOCK)) < 0)
		pr_err("open gone for writing after the release");
	else
		close(fd);
	expect_lease(down, "down", F_RDLCK, "ACTIVE    READ", "ended");

	run_into("owned", O_RDONLY, "after");	/* signals the child */
	usleep(100000);
	if (sigio_seen != 1 || usr2_seen)
		pr_err("the root got the break signal of owned (SIGIO %d, SIGUSR2 %d)",
		       (int)sigio_seen, (int)usr2_seen);
	test_children_check();
	test_result();
	return 0;
}
