/*
 * dev_tty_fails: an fd of /dev/tty (the controlling terminal's alias, here a pty pair
 * the process holds): refcr refuses the dump (crfail) and the fd still works afterwards.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int master, slave, tty;
	pid_t pgrp;

	test_init(argc, argv);
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"the controlling terminal's alias\"}]}");
	if (openpty(&master, &slave, NULL, NULL, NULL))
		fail("openpty");
	if (ioctl(slave, TIOCSCTTY, 0))
		fail("TIOCSCTTY");
	tty = open("/dev/tty", O_RDWR);
	if (tty < 0)
		fail("/dev/tty");

	test_daemon();
	test_waitsig();

	if (ioctl(tty, TIOCGPGRP, &pgrp) || pgrp != getpgrp())
		pr_err("/dev/tty does not reach the terminal any more");
	test_result();
	return 0;
}
