/*
 * unix_names00: unix socket names of every kind, including the awkward ones.
 *
 * - a stream listener bound in a directory, then the socket file and the
 *   directory removed (an accepted connection stays): after restore the name
 *   is still reported, neither the file nor the directory exists, the
 *   connection carries data;
 * - two listeners once bound to the same path: `old` bound to P, `new` bound
 *   to P.tmp and renamed over P: after restore P is a socket that reaches
 *   `new`, `old` still reports P and is unreachable;
 * - a listener bound to Q.tmp and renamed to Q, a name nothing had (the
 *   JVM's attach listener): after restore Q reaches it, Q.tmp is absent,
 *   it still reports Q.tmp;
 * - an autobound datagram socket (abstract name chosen by the kernel), an
 *   abstract seqpacket listener, an unbound socketpair: the same names.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DIR	"unix_names00.dir"
#define GONE	DIR "/s"
#define P	"unix_names00.p"
#define PTMP	"unix_names00.p.tmp"
#define Q	"unix_names00.q"
#define QTMP	"unix_names00.q.tmp"

struct name {
	struct sockaddr_un a;
	socklen_t l;
};

static struct name getname(int fd)
{
	struct name n;

	memset(&n, 0, sizeof(n));
	n.l = sizeof(n.a);
	if (getsockname(fd, (struct sockaddr *)&n.a, &n.l))
		pr_err("getsockname");
	return n;
}

static void same(int fd, struct name *want, const char *who)
{
	struct name n = getname(fd);

	if (n.l != want->l || memcmp(&n.a, &want->a, n.l))
		pr_err("%s: name changed", who);
}

static int bound(int type, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type, 0);

	strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)))
		fail("bind %s", path);
	return fd;
}

static int connect_to(int type, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type, 0);

	strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	return fd;
}

int main(int argc, char **argv)
{
	struct sockaddr_un ab = { .sun_family = AF_UNIX };
	struct sockaddr_un auto_a = { .sun_family = AF_UNIX };
	struct name ngone, nold, nnew, nauto, nabs, npair, nmoved;
	int gone, c, a, old, new, au, abl, pr[2], x, moved;
	struct stat st;
	char buf[8];

	test_init(argc, argv);
	unlink(P);
	unlink(PTMP);
	unlink(Q);
	unlink(QTMP);
	unlink(GONE);
	rmdir(DIR);
	if (mkdir(DIR, 0755))
		fail("mkdir");
	gone = bound(SOCK_STREAM, GONE);
	if (listen(gone, 4) || (c = connect_to(SOCK_STREAM, GONE)) < 0 || (a = accept(gone, NULL, NULL)) < 0)
		fail("connection to " GONE);
	if (unlink(GONE) || rmdir(DIR))
		fail("remove " DIR);

	old = bound(SOCK_STREAM, P);
	new = bound(SOCK_STREAM, PTMP);
	if (listen(old, 4) || listen(new, 4) || rename(PTMP, P))
		fail("rename over " P);
	moved = bound(SOCK_STREAM, QTMP);
	if (listen(moved, 4) || rename(QTMP, Q))
		fail("rename to " Q);

	au = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind(au, (struct sockaddr *)&auto_a, sizeof(sa_family_t)))
		fail("autobind");
	abl = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	memcpy(ab.sun_path, "\0unix_names00.abs", 17);
	if (bind(abl, (struct sockaddr *)&ab, offsetof(struct sockaddr_un, sun_path) + 17) || listen(abl, 4))
		fail("abstract listener");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pr))
		fail("socketpair");
	ngone = getname(gone);
	nold = getname(old);
	nnew = getname(new);
	nauto = getname(au);
	nabs = getname(abl);
	npair = getname(pr[0]);
	nmoved = getname(moved);

	test_daemon();
	test_waitsig();

	same(gone, &ngone, "listener in a removed directory");
	same(old, &nold, "old listener of " P);
	same(new, &nnew, "new listener of " P);
	same(au, &nauto, "autobound");
	same(abl, &nabs, "abstract");
	same(pr[0], &npair, "socketpair");
	same(moved, &nmoved, "listener renamed to " Q);
	if (lstat(QTMP, &st) == 0)
		pr_err(QTMP " came back");
	fcntl(moved, F_SETFL, O_NONBLOCK);
	x = connect_to(SOCK_STREAM, Q);
	if (x < 0 || accept(moved, NULL, NULL) < 0)
		pr_err(Q " does not reach its listener");
	unlink(Q);
	if (lstat(GONE, &st) == 0 || lstat(DIR, &st) == 0)
		pr_err(DIR " came back");
	if (write(c, "ab", 2) != 2 || read(a, buf, 2) != 2 || memcmp(buf, "ab", 2))
		pr_err("connection to the removed path");
	if (lstat(P, &st) || !S_ISSOCK(st.st_mode))
		pr_err(P " is not a socket file");
	fcntl(new, F_SETFL, O_NONBLOCK);
	fcntl(old, F_SETFL, O_NONBLOCK);
	x = connect_to(SOCK_STREAM, P);
	if (x < 0)
		pr_err("connect to " P);
	else if ((x = accept(new, NULL, NULL)) < 0)
		pr_err(P " does not reach the new listener");
	if (accept(old, NULL, NULL) >= 0)
		pr_err(P " reached the old listener");
	unlink(P);
	test_result();
}
