/*
 * inotify00: an inotify instance keeps its watches and their numbers.
 *
 * Watches: wd 1 on a directory (IN_CREATE|IN_DELETE), wd 2 on a file in it
 * (IN_MODIFY), wd 3 added and removed again (a gap), wd 4 on another file
 * (IN_ATTRIB|IN_ONESHOT).  After restore: creating a file in the directory,
 * writing the first file and chmod'ing the second give exactly the events
 * with wds 1, 2, 4 (and the oneshot watch then goes: IN_IGNORED for wd 4);
 * the next new watch gets wd 5, as it would have before; O_NONBLOCK kept.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_	"inotify00.dir"

struct ev {
	int wd;
	uint32_t mask;
	char name[32];
};

static int read_events(int fd, struct ev *out, int max)
{
	char buf[4096] __attribute__((aligned(8)));
	int n = 0;
	ssize_t len;
	char *p;

	len = read(fd, buf, sizeof(buf));
	if (len <= 0)
		return 0;
	for (p = buf; p < buf + len && n < max; n++) {
		struct inotify_event *e = (struct inotify_event *)p;

		out[n].wd = e->wd;
		out[n].mask = e->mask;
		snprintf(out[n].name, sizeof(out[n].name), "%s", e->len ? e->name : "");
		p += sizeof(*e) + e->len;
	}
	return n;
}

static void expect(int fd, int wd, uint32_t mask, const char *name, const char *what)
{
	struct ev ev[8];
	int n = read_events(fd, ev, 8);

	if (n != 1)
		pr_err("%s: %d events, expected 1 (first: wd %d mask %#x)", what, n,
		       n ? ev[0].wd : -1, n ? ev[0].mask : 0);
	else if (ev[0].wd != wd || ev[0].mask != mask || strcmp(ev[0].name, name))
		pr_err("%s: event wd %d mask %#x name '%s', expected wd %d mask %#x name '%s'",
		       what, ev[0].wd, ev[0].mask, ev[0].name, wd, mask, name);
}

static void touch(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY, 0644);

	if (fd < 0)
		fail("create %s", path);
	close(fd);
}

int main(int argc, char **argv)
{
	int fd, wd, f;
	struct ev ev[8];

	test_init(argc, argv);

	if (mkdir(DIR_, 0755) && errno != EEXIST)
		fail("mkdir");
	touch(DIR_ "/a");
	touch(DIR_ "/b");
	touch(DIR_ "/c");
	fd = inotify_init1(IN_NONBLOCK);
	if (fd < 0)
		fail("inotify_init1");
	if (inotify_add_watch(fd, DIR_, IN_CREATE | IN_DELETE) != 1 ||
	    inotify_add_watch(fd, DIR_ "/a", IN_MODIFY) != 2 ||
	    inotify_add_watch(fd, DIR_ "/b", IN_MODIFY) != 3)
		fail("inotify_add_watch: unexpected wds");
	if (inotify_rm_watch(fd, 3))
		fail("inotify_rm_watch");
	if (inotify_add_watch(fd, DIR_ "/c", IN_ATTRIB | IN_ONESHOT) != 4)
		fail("inotify_add_watch: unexpected wd for c");
	/* The IN_IGNORED of wd 3: not part of what is checked. */
	if (read_events(fd, ev, 8) != 1 || ev[0].wd != 3 || !(ev[0].mask & IN_IGNORED))
		fail("no IN_IGNORED for the removed watch");

	test_daemon();
	test_waitsig();

	if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
		pr_err("lost O_NONBLOCK");
	if (read_events(fd, ev, 8))
		pr_err("events queued right after restore: wd %d mask %#x", ev[0].wd, ev[0].mask);
	touch(DIR_ "/new");
	expect(fd, 1, IN_CREATE, "new", "create in the directory");
	f = open(DIR_ "/a", O_WRONLY | O_APPEND);
	if (f < 0 || write(f, "x", 1) != 1)
		fail("write to a");
	close(f);
	expect(fd, 2, IN_MODIFY, "", "write to a");
	if (chmod(DIR_ "/c", 0600))
		fail("chmod");
	{
		int n = read_events(fd, ev, 8);

		if (n != 2 || ev[0].wd != 4 || ev[0].mask != IN_ATTRIB ||
		    ev[1].wd != 4 || ev[1].mask != IN_IGNORED)
			pr_err("chmod of c: %d events (wd %d mask %#x), expected IN_ATTRIB + IN_IGNORED on wd 4",
			       n, n ? ev[0].wd : -1, n ? ev[0].mask : 0);
	}
	wd = inotify_add_watch(fd, DIR_ "/b", IN_MODIFY);
	if (wd != 5)
		pr_err("a new watch got wd %d, expected 5", wd);
	unlink(DIR_ "/new");
	expect(fd, 1, IN_DELETE, "new", "unlink in the directory");

	test_result();
	return 0;
}
