/*
 * fanotify00: a fanotify group (FAN_CLASS_NOTIF, O_NONBLOCK, event fds O_RDONLY) with an
 * inode mark on a file (FAN_MODIFY | FAN_CLOSE_WRITE), one on a directory (FAN_OPEN on
 * its children, FAN_ONDIR), one on another file with only an ignored mask that survives
 * modification, a mount mark and a filesystem mark with ignored masks only that survive
 * modification (no events from the rest of the machine).  After restore the marks read back the same (the
 * harness compares the fdinfo lines) and events come: writing the file gives FAN_MODIFY
 * with an event fd of that file, opening a file in the directory gives FAN_OPEN.
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

static int fan;

static void mark(unsigned flags, uint64_t mask, const char *path)
{
	if (fanotify_mark(fan, FAN_MARK_ADD | flags, mask, AT_FDCWD, path))
		fail("fanotify_mark %s", path);
}

/* read events until one with `want` in its mask whose fd is inode `ino` */
static int expect(uint64_t want, ino_t ino)
{
	char buf[4096];
	int i;

	for (i = 0; i < 200; i++) {
		ssize_t n = read(fan, buf, sizeof(buf));
		struct fanotify_event_metadata *m = (void *)buf;

		if (n < 0 && errno == EAGAIN) {
			usleep(10000);
			continue;
		}
		if (n < 0)
			return -1;
		for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			struct stat st;
			int hit = 0;

			if (m->fd >= 0) {
				hit = (m->mask & want) && !fstat(m->fd, &st) && st.st_ino == ino;
				close(m->fd);
			}
			if (hit)
				return 0;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct stat f, d;
	int fd;

	test_init(argc, argv);
	if ((mkdir("d", 0755) && errno != EEXIST) || close(open("d/g", O_CREAT | O_WRONLY, 0644)) ||
	    close(open("f", O_CREAT | O_WRONLY, 0644)) || close(open("h", O_CREAT | O_WRONLY, 0644)))
		fail("files");
	fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	if (fan < 0)
		fail("fanotify_init");
	mark(0, FAN_MODIFY | FAN_CLOSE_WRITE, "f");
	mark(0, FAN_OPEN | FAN_EVENT_ON_CHILD | FAN_ONDIR, "d");
	mark(FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_OPEN, "h");
	mark(FAN_MARK_MOUNT | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_CLOSE_NOWRITE, ".");
	mark(FAN_MARK_FILESYSTEM | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_ACCESS, ".");
	if (stat("f", &f) || stat("d/g", &d))
		fail("stat");

	test_daemon();
	test_waitsig();

	fd = open("f", O_WRONLY);
	if (fd < 0 || write(fd, "x", 1) != 1)
		fail("write f");
	close(fd);
	if (expect(FAN_MODIFY, f.st_ino))
		pr_err("no FAN_MODIFY event for f");
	close(open("d/g", O_RDONLY));
	if (expect(FAN_OPEN, d.st_ino))
		pr_err("no FAN_OPEN event for d/g");
	test_result();
	return 0;
}
