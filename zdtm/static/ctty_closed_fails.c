/*
 * ctty_closed_fails: a session leader whose controlling terminal (a pty slave) it no
 * longer has open, the master still held: refcr cannot give the terminal back, so the
 * dump is refused (crfail) and the process keeps its terminal.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int master, slave, tty;

	test_init(argc, argv);
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"is not open in it\"}]}");
	if (openpty(&master, &slave, NULL, NULL, NULL))
		fail("openpty");
	if (ioctl(slave, TIOCSCTTY, 0))
		fail("TIOCSCTTY");
	close(slave);

	test_daemon();
	test_waitsig();

	tty = open("/dev/tty", O_RDONLY | O_NOCTTY);
	if (tty < 0)
		pr_err("the controlling terminal is gone");
	test_result();
	return 0;
}
