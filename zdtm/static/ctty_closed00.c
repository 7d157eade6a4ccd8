/*
 * ctty_closed00: a session leader whose controlling terminal (a pty slave)
 * it no longer has open, the master still held, its own group in the
 * foreground.  After restore the slave is its controlling terminal again
 * (the master's TIOCGSID is its session, TIOCGPGRP its group; /dev/tty
 * opens and reaches the pty) and it still holds no fd of the slave.
 */
#include "zdtmtst.h"

#include <dirent.h>
#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TIOCGDEV
#define TIOCGDEV _IOR('T', 0x32, unsigned int)
#endif

/* How many fds of the process are the device rdev. */
static int holders(dev_t rdev)
{
	char path[300];
	struct dirent *d;
	struct stat st;
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	while (dir && (d = readdir(dir)))
		if (d->d_name[0] != '.') {
			snprintf(path, sizeof(path), "/proc/self/fd/%s", d->d_name);
			if (stat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == rdev)
				n++;
		}
	if (dir)
		closedir(dir);
	return n;
}

int main(int argc, char **argv)
{
	int master, slave, tty;
	unsigned int dev = 0;
	pid_t sid, pgrp;
	struct stat st;

	test_init(argc, argv);
	if (openpty(&master, &slave, NULL, NULL, NULL))
		fail("openpty");
	if (ioctl(slave, TIOCSCTTY, 0) || fstat(slave, &st))
		fail("TIOCSCTTY");
	close(slave);

	test_daemon();
	test_waitsig();

	if (ioctl(master, TIOCGSID, &sid) || sid != getsid(0))
		pr_err("the pty is not the controlling terminal of the session");
	if (ioctl(master, TIOCGPGRP, &pgrp) || pgrp != getpgrp())
		pr_err("the foreground group of the pty is not the process's");
	tty = open("/dev/tty", O_RDONLY | O_NOCTTY);
	if (tty < 0)
		pr_err("the controlling terminal is gone");
	else if (ioctl(tty, TIOCGDEV, &dev) || dev != st.st_rdev)
		pr_err("/dev/tty reaches %x, not the pty", dev);
	if (tty >= 0)
		close(tty);
	if (holders(st.st_rdev))
		pr_err("the process holds the slave now");
	test_result();
	return 0;
}
