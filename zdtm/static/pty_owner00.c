/*
 * pty_owner00: a pty whose slave belongs to another user, in packet mode,
 * with its termios, window size and bytes queued both ways.
 *
 * The slave node /dev/pts/N is given to uid 1234, gid 5, mode 0610; the
 * master is in packet mode; the slave is raw (no echo, no canonical mode)
 * with VMIN 3 and a window of 33x101; 5 bytes wait for the slave's reader,
 * 7 for the master's.  After restore: stat of the slave (by path and fd)
 * shows the owner and mode, TIOCGPKT is on, termios and window are as
 * set, the queued bytes come out on each side (the master's after the
 * packet-mode status byte), and a new write goes through.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct winsize ws = { .ws_row = 33, .ws_col = 101 }, got_ws;
	struct termios tio, got;
	char name[64], buf[32];
	struct stat st;
	int m, s, pkt = 1, n;

	test_init(argc, argv);

	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || ptsname_r(m, name, sizeof(name)))
		fail("posix_openpt");
	s = open(name, O_RDWR | O_NOCTTY);
	if (s < 0 || chown(name, 1234, 5) || chmod(name, 0610))
		fail("open/chown the slave");
	if (tcgetattr(s, &tio))
		fail("tcgetattr");
	cfmakeraw(&tio);
	tio.c_cc[VMIN] = 3;
	if (tcsetattr(s, TCSANOW, &tio) || ioctl(m, TIOCSWINSZ, &ws) || ioctl(m, TIOCPKT, &pkt))
		fail("set the pty up");
	if (write(m, "input", 5) != 5 || write(s, "output!", 7) != 7)
		fail("queue");

	test_daemon();
	test_waitsig();

	if (stat(name, &st) || st.st_uid != 1234 || st.st_gid != 5 || (st.st_mode & 07777) != 0610)
		pr_err("%s: owner %d:%d mode %o, expected 1234:5 0610", name, st.st_uid, st.st_gid,
		       st.st_mode & 07777);
	if (ioctl(m, TIOCGPKT, &pkt) || !pkt)
		pr_err("packet mode is off");
	if (tcgetattr(s, &got) || got.c_lflag != tio.c_lflag || got.c_iflag != tio.c_iflag ||
	    got.c_oflag != tio.c_oflag || got.c_cc[VMIN] != 3)
		pr_err("termios changed");
	if (ioctl(s, TIOCGWINSZ, &got_ws) || got_ws.ws_row != 33 || got_ws.ws_col != 101)
		pr_err("window size %dx%d", got_ws.ws_row, got_ws.ws_col);
	if ((n = read(s, buf, sizeof(buf))) != 5 || memcmp(buf, "input", 5))
		pr_err("the slave reads %d bytes, expected \"input\"", n);
	if ((n = read(m, buf, sizeof(buf))) != 8 || buf[0] != TIOCPKT_DATA || memcmp(buf + 1, "output!", 7))
		pr_err("the master reads %d bytes, expected a data packet \"output!\"", n);
	if (write(m, "abc", 3) != 3 || read(s, buf, 3) != 3 || memcmp(buf, "abc", 3))
		pr_err("a new write does not go through");

	test_result();
	return 0;
}
