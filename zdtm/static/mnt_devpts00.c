/*
 * mnt_devpts00: a devpts instance of the namespace survives with its
 * options and its ptys keep their indexes (ns flavor).
 *
 * A new devpts is mounted on /dev/pts (ptmxmode=0666, mode=0620, gid=5);
 * two ptys are opened through /dev/ptmx (indexes 0 and 1 of the new
 * instance) and the first is closed, so the one kept has index 1.  After
 * restore: mountinfo shows the devpts with the same options, the master
 * still says index 1 (TIOCGPTN), /dev/pts/1 is the slave held (same rdev),
 * /dev/pts/0 does not exist, and data goes from master to slave and back.
 */
#include "zdtmtst.h"
#include "zmnt.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

static int open_pty(int *slave)
{
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY), n, unlock = 0;
	char name[32];

	if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) || ioctl(master, TIOCGPTN, &n))
		fail("open /dev/ptmx");
	snprintf(name, sizeof(name), "/dev/pts/%d", n);
	*slave = open(name, O_RDWR | O_NOCTTY);
	if (*slave < 0)
		fail("open %s", name);
	return master;
}

static void check_pty(const char *when, int master, int slave)
{
	struct zmnt m;
	struct stat a, b;
	int n = -1;

	if (zmnt_find("/dev/pts", &m) == 0 &&
	    (strcmp(m.fstype, "devpts") || strcmp(m.source, "zdtm-devpts") || !zmnt_has(m.sopts, "gid=5") ||
	     !zmnt_has(m.sopts, "mode=620") || !zmnt_has(m.sopts, "ptmxmode=666")))
		pr_err("%s: /dev/pts is %s %s %s", when, m.fstype, m.source, m.sopts);
	if (ioctl(master, TIOCGPTN, &n) || n != 1)
		pr_err("%s: the master has index %d, expected 1", when, n);
	if (fstat(slave, &a) || stat("/dev/pts/1", &b) || a.st_rdev != b.st_rdev || a.st_dev != b.st_dev)
		pr_err("%s: the slave held is not /dev/pts/1", when);
	if (access("/dev/pts/0", F_OK) == 0)
		pr_err("%s: /dev/pts/0 exists", when);
}

int main(int argc, char **argv)
{
	struct termios t;
	char buf[8];
	int m0, s0, master, slave;

	test_init(argc, argv);
	zmnt_mount("zdtm-devpts", "/dev/pts", "devpts", 0, "newinstance,ptmxmode=0666,mode=0620,gid=5");
	m0 = open_pty(&s0);
	master = open_pty(&slave);
	close(s0);
	close(m0);
	if (tcgetattr(slave, &t))
		fail("tcgetattr");
	cfmakeraw(&t);
	if (tcsetattr(slave, TCSANOW, &t))
		fail("tcsetattr");
	check_pty("before", master, slave);
	if (test_errors)
		fail("set-up");

	test_daemon();
	test_waitsig();

	check_pty("after restore", master, slave);
	if (write(master, "ping", 4) != 4 || read(slave, buf, 4) != 4 || memcmp(buf, "ping", 4))
		pr_err("master -> slave does not work");
	if (write(slave, "pong", 4) != 4 || read(master, buf, 4) != 4 || memcmp(buf, "pong", 4))
		pr_err("slave -> master does not work");
	test_result();
	return 0;
}
