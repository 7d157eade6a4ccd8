/*
 * dev_tty00: fds of /dev/tty (the controlling terminal's alias), here of a
 * pty pair the process holds and leads the session of.
 *
 * Two opens of /dev/tty (O_RDWR; O_RDONLY|O_NONBLOCK) and a dup of the
 * first.  After restore: each is still /dev/tty (5:0) reaching the pty
 * (TIOCGDEV is the slave's device, TIOCGPGRP the process's group), the
 * flags are as before, the dup is the same description (a flag set on one
 * shows on the other), bytes written to /dev/tty come out of the master and
 * bytes written to the master are read through /dev/tty.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGDEV
#define TIOCGDEV _IOR('T', 0x32, unsigned int)
#endif

static void same_tty(int fd, dev_t slave, const char *what)
{
	unsigned int dev = 0;
	struct stat st;
	pid_t pgrp;

	if (fstat(fd, &st) || st.st_rdev != makedev(5, 0))
		pr_err("%s is not /dev/tty", what);
	if (ioctl(fd, TIOCGDEV, &dev) || dev != slave)
		pr_err("%s reaches device %x, not the pty's %lx", what, dev, (unsigned long)slave);
	if (ioctl(fd, TIOCGPGRP, &pgrp) || pgrp != getpgrp())
		pr_err("%s: TIOCGPGRP does not reach the terminal", what);
}

int main(int argc, char **argv)
{
	int master, slave, tty, ttyro, dup_tty;
	struct termios tio;
	struct pollfd p;
	struct stat st;
	char buf[16];

	test_init(argc, argv);
	if (openpty(&master, &slave, NULL, NULL, NULL))
		fail("openpty");
	if (tcgetattr(slave, &tio))
		fail("tcgetattr");
	cfmakeraw(&tio);
	if (tcsetattr(slave, TCSANOW, &tio) || ioctl(slave, TIOCSCTTY, 0))
		fail("TIOCSCTTY");
	tty = open("/dev/tty", O_RDWR);
	ttyro = open("/dev/tty", O_RDONLY | O_NONBLOCK);
	dup_tty = dup(tty);
	if (tty < 0 || ttyro < 0 || dup_tty < 0 || fstat(slave, &st))
		fail("/dev/tty");

	test_daemon();
	test_waitsig();

	same_tty(tty, st.st_rdev, "fd tty");
	same_tty(ttyro, st.st_rdev, "fd ttyro");
	if ((fcntl(tty, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != O_RDWR ||
	    (fcntl(ttyro, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != (O_RDONLY | O_NONBLOCK))
		pr_err("flags changed: %o %o", fcntl(tty, F_GETFL), fcntl(ttyro, F_GETFL));
	if (fcntl(dup_tty, F_SETFL, O_NONBLOCK) || !(fcntl(tty, F_GETFL) & O_NONBLOCK))
		pr_err("the dup is another description now");
	fcntl(dup_tty, F_SETFL, 0);
	if (write(tty, "out", 3) != 3)
		pr_err("write to /dev/tty");
	p = (struct pollfd){ .fd = master, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1 || read(master, buf, sizeof(buf)) != 3 || memcmp(buf, "out", 3))
		pr_err("what was written to /dev/tty did not come out of the master");
	if (write(master, "in", 2) != 2)
		pr_err("write to the master");
	p = (struct pollfd){ .fd = ttyro, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1 || read(ttyro, buf, sizeof(buf)) != 2 || memcmp(buf, "in", 2))
		pr_err("what was written to the master is not read through /dev/tty");
	test_result();
	return 0;
}
