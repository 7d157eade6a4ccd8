/*
 * pty00: pseudo-terminal pairs survive.
 *
 *   A  master + slave; the slave cooked (canonical) with echo off and
 *      changed special characters; a window size; packet mode on the
 *      master.  Queued: two complete lines for the slave's reader, and a
 *      line the slave wrote (ONLCR made it end in \r\n) for the master's.
 *      A child calls setsid() and makes the slave its controlling terminal
 *      (it leads the foreground group).
 *   B  master + slave in raw mode (VMIN 0), binary bytes queued both ways,
 *      the master O_NONBLOCK.
 *   C  a master whose slave was never unlocked.
 *
 * After restore: same pty numbers (TIOCGPTN, ptsname, ttyname, st_rdev),
 * termios, window size, packet mode, locks, FIONREAD counts and exactly the
 * queued bytes; the pairs still carry data both ways; the child's
 * controlling terminal, session and foreground group.  Complete lines only:
 * a partial line of a canonical slave would become readable early.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#define KCC	19	/* control characters the kernel keeps */

struct pair {
	int m, s, n;
	char name[64];
	struct termios tio;
	struct winsize ws;
	int pkt, lck, inq_m, inq_s;
};

static const char a_lines[] = "line one\nline two\n";
static const char a_up[] = "to master 123\n";
static const char a_up_seen[] = "to master 123\r\n";
static unsigned char b_down[300], b_up[500];

static void open_pair(struct pair *p, int unlock)
{
	p->m = posix_openpt(O_RDWR | O_NOCTTY);
	if (p->m < 0)
		fail("posix_openpt");
	if (ioctl(p->m, TIOCGPTN, &p->n))
		fail("TIOCGPTN");
	snprintf(p->name, sizeof(p->name), "%s", ptsname(p->m));
	p->s = -1;
	if (!unlock)
		return;
	if (unlockpt(p->m))
		fail("unlockpt");
	p->s = open(p->name, O_RDWR | O_NOCTTY);
	if (p->s < 0)
		fail("open %s", p->name);
}

static int inq(int fd)
{
	int n = -1;

	if (ioctl(fd, FIONREAD, &n))
		return -1;
	return n;
}

/* The bytes travel through a work queue: wait until they are there. */
static void wait_inq(int fd, int want, const char *what)
{
	int i;

	for (i = 0; i < 5000 && inq(fd) != want; i++)
		usleep(1000);
	if (inq(fd) != want)
		fail("%s: %d bytes queued, want %d", what, inq(fd), want);
}

static void save(struct pair *p)
{
	if (p->s >= 0 && tcgetattr(p->s, &p->tio))
		fail("tcgetattr");
	if (ioctl(p->m, TIOCGWINSZ, &p->ws) || ioctl(p->m, TIOCGPKT, &p->pkt) ||
	    ioctl(p->m, TIOCGPTLCK, &p->lck))
		fail("pty ioctls");
	p->inq_m = inq(p->m);
	p->inq_s = p->s >= 0 ? inq(p->s) : 0;
}

static void check_pair(struct pair *p, const char *who)
{
	struct termios tio;
	struct winsize ws;
	struct stat st;
	int n, pkt, lck;

	if (ioctl(p->m, TIOCGPTN, &n) || n != p->n)
		pr_err("%s: pty number %d, was %d", who, n, p->n);
	if (strcmp(ptsname(p->m) ?: "", p->name))
		pr_err("%s: ptsname %s, was %s", who, ptsname(p->m), p->name);
	if (ioctl(p->m, TIOCGWINSZ, &ws) || memcmp(&ws, &p->ws, sizeof(ws)))
		pr_err("%s: window size %dx%d, was %dx%d", who, ws.ws_row, ws.ws_col,
		       p->ws.ws_row, p->ws.ws_col);
	if (ioctl(p->m, TIOCGPKT, &pkt) || pkt != p->pkt)
		pr_err("%s: packet mode %d, was %d", who, pkt, p->pkt);
	if (ioctl(p->m, TIOCGPTLCK, &lck) || lck != p->lck)
		pr_err("%s: lock %d, was %d", who, lck, p->lck);
	if (inq(p->m) != p->inq_m)
		pr_err("%s: master FIONREAD %d, was %d", who, inq(p->m), p->inq_m);
	if (p->s < 0)
		return;
	if (inq(p->s) != p->inq_s)
		pr_err("%s: slave FIONREAD %d, was %d", who, inq(p->s), p->inq_s);
	if (strcmp(ttyname(p->s) ?: "", p->name))
		pr_err("%s: ttyname %s, was %s", who, ttyname(p->s), p->name);
	if (fstat(p->s, &st) || minor(st.st_rdev) != (unsigned)p->n % 256)
		pr_err("%s: slave rdev %u:%u", who, major(st.st_rdev), minor(st.st_rdev));
	if (tcgetattr(p->s, &tio))
		pr_err("%s: tcgetattr", who);
	else if (tio.c_iflag != p->tio.c_iflag || tio.c_oflag != p->tio.c_oflag ||
		 tio.c_cflag != p->tio.c_cflag || tio.c_lflag != p->tio.c_lflag ||
		 memcmp(tio.c_cc, p->tio.c_cc, KCC) ||
		 cfgetispeed(&tio) != cfgetispeed(&p->tio))
		pr_err("%s: termios changed (lflag %o, was %o)", who, tio.c_lflag, p->tio.c_lflag);
}

/* Everything readable now (non-blocking); packet mode's status bytes dropped. */
static size_t drain(int fd, char *buf, size_t size, int pkt)
{
	int fl = fcntl(fd, F_GETFL);
	size_t done = 0;
	char tmp[4096];
	ssize_t n;

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	while (done < size) {
		n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (pkt) {
			if (tmp[0] != TIOCPKT_DATA)
				continue;
			memmove(tmp, tmp + 1, --n);
		}
		if ((size_t)n > size - done)
			n = size - done;
		memcpy(buf + done, tmp, n);
		done += n;
	}
	fcntl(fd, F_SETFL, fl);
	return done;
}

static void expect(int fd, int pkt, const void *want, size_t len, const char *what)
{
	char buf[4096];
	size_t n = drain(fd, buf, sizeof(buf), pkt);

	if (n != len || memcmp(buf, want, len))
		pr_err("%s: read %zu bytes, want %zu%s", what, n, len,
		       n == len ? " (different data)" : "");
}

static int ctty_child(struct pair *a)
{
	pid_t sid;
	int nr;

	if (setsid() < 0)
		fail("setsid");
	if (ioctl(a->s, TIOCSCTTY, 0))
		fail("TIOCSCTTY");
	if (tcgetpgrp(a->s) != getpgrp())
		fail("not the foreground group");
	sid = getsid(0);
	test_child_ready();
	test_waitsig();
	if (getsid(0) != sid)
		pr_err("child: sid %d, was %d", getsid(0), sid);
	if (tcgetsid(a->s) != getpid())
		pr_err("child: the slave's session is %d, not the child's", tcgetsid(a->s));
	if (tcgetpgrp(a->s) != getpgrp())
		pr_err("child: foreground group %d, not %d", tcgetpgrp(a->s), getpgrp());
	{
		char buf[512], *p;
		FILE *f = fopen("/proc/self/stat", "r");

		if (!f || !fgets(buf, sizeof(buf), f))
			fail("read /proc/self/stat");
		fclose(f);
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 2, "%*c %*d %*d %*d %d", &nr) != 1)
			fail("parse /proc/self/stat");
		if (minor(nr) != (unsigned)a->n % 256 || major(nr) < 136)
			pr_err("child: tty_nr %u:%u is not %s", major(nr), minor(nr), a->name);
	}
	if (open("/dev/tty", O_RDWR) < 0)
		pr_err("child: no controlling terminal (/dev/tty)");
	test_child_exit();
	return 0;
}

int main(int argc, char **argv)
{
	struct pair a, b, c;
	struct termios t;
	struct winsize ws = { .ws_row = 33, .ws_col = 111, .ws_xpixel = 7, .ws_ypixel = 9 };
	int one = 1, fd;
	char buf[64];

	test_init(argc, argv);

	open_pair(&a, 1);
	open_pair(&b, 1);
	open_pair(&c, 0);

	if (tcgetattr(a.s, &t))
		fail("tcgetattr");
	t.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE);
	t.c_cc[VINTR] = 'X' & 0x1f;
	t.c_cc[VERASE] = 'H' & 0x1f;
	t.c_cc[VKILL] = 'U' & 0x1f;
	cfsetispeed(&t, B9600);
	cfsetospeed(&t, B9600);
	if (tcsetattr(a.s, TCSANOW, &t))
		fail("tcsetattr A");
	if (ioctl(a.m, TIOCSWINSZ, &ws) || ioctl(a.m, TIOCPKT, &one))
		fail("TIOCSWINSZ/TIOCPKT");
	if (write(a.m, a_lines, strlen(a_lines)) != (ssize_t)strlen(a_lines) ||
	    write(a.s, a_up, strlen(a_up)) != (ssize_t)strlen(a_up))
		fail("write A");

	if (tcgetattr(b.s, &t))
		fail("tcgetattr");
	cfmakeraw(&t);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(b.s, TCSANOW, &t))
		fail("tcsetattr B");
	datagen((char *)b_down, sizeof(b_down), 7);
	datagen((char *)b_up, sizeof(b_up), 8);
	if (write(b.m, b_down, sizeof(b_down)) != sizeof(b_down) ||
	    write(b.s, b_up, sizeof(b_up)) != sizeof(b_up))
		fail("write B");
	fcntl(b.m, F_SETFL, fcntl(b.m, F_GETFL) | O_NONBLOCK);

	wait_inq(a.s, strlen(a_lines), "A slave");
	wait_inq(a.m, strlen(a_up_seen), "A master");
	wait_inq(b.s, sizeof(b_down), "B slave");
	wait_inq(b.m, sizeof(b_up), "B master");
	save(&a);
	save(&b);
	save(&c);
	if (!c.lck)
		fail("C is not locked");

	if (test_fork() == 0)
		return ctty_child(&a);

	test_daemon();
	test_waitsig();

	check_pair(&a, "A");
	check_pair(&b, "B");
	check_pair(&c, "C");
	if (!(fcntl(b.m, F_GETFL) & O_NONBLOCK) || (fcntl(a.m, F_GETFL) & O_NONBLOCK))
		pr_err("O_NONBLOCK of the masters changed");

	expect(a.s, 0, a_lines, strlen(a_lines), "A slave");
	expect(a.m, 1, a_up_seen, strlen(a_up_seen), "A master");
	expect(b.s, 0, b_down, sizeof(b_down), "B slave");
	expect(b.m, 0, b_up, sizeof(b_up), "B master");

	/* Still working, both ways, with the line discipline's settings. */
	if (write(a.m, "again\n", 6) != 6 || write(b.s, "xyz", 3) != 3)
		pr_err("write after restore");
	wait_inq(a.s, 6, "A slave after");
	if (read(a.s, buf, sizeof(buf)) != 6 || memcmp(buf, "again\n", 6))
		pr_err("A: a new line");
	wait_inq(b.m, 3, "B master after");
	expect(b.m, 0, "xyz", 3, "B master after");
	fd = open(c.name, O_RDWR | O_NOCTTY);
	if (fd >= 0 || errno != EIO)
		pr_err("C: the locked slave could be opened (or %m)");

	test_children_check();
	test_result();
	return 0;
}
