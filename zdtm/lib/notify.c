/* inotify and fanotify queues read whole and compared (znotify.h). */
#include "zdtmtst.h"
#include "znotify.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUIET_MS 300		/* how long "nothing queued" is waited for */

/* Read all that is queued (the first read waits up to timeout_ms); -1 on error. */
static ssize_t read_queue(int fd, int timeout_ms, char *buf, size_t size)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t len = 0;

	while (len < size && poll(&p, 1, len ? 0 : timeout_ms) == 1) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			pr_err("read of notification fd %d", fd);
			return -1;
		}
		len += n;
	}
	return len;
}

int zin_read(int fd, int timeout_ms, struct zin_ev *out, int max)
{
	static char buf[16384] __attribute__((aligned(8)));
	ssize_t len = read_queue(fd, timeout_ms, buf, sizeof(buf));
	char *p = buf;
	int n = 0;

	for (; len > 0 && p < buf + len && n < max; n++) {
		struct inotify_event *e = (struct inotify_event *)p;

		out[n].wd = e->wd;
		out[n].mask = e->mask;
		snprintf(out[n].name, sizeof(out[n].name), "%s", e->len ? e->name : "");
		p += sizeof(*e) + e->len;
	}
	return len < 0 ? -1 : n;
}

int zfan_read(int fd, int timeout_ms, struct zfan_ev *out, int max)
{
	static char buf[16384] __attribute__((aligned(8)));
	ssize_t len = read_queue(fd, timeout_ms, buf, sizeof(buf));
	struct fanotify_event_metadata *m = (void *)buf;
	int n = 0;

	for (; len > 0 && FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
		struct stat st = { 0 };

		if (m->fd >= 0) {
			fstat(m->fd, &st);
			close(m->fd);
		}
		if (n < max)
			out[n++] = (struct zfan_ev){ .mask = m->mask, .ino = st.st_ino };
	}
	return len < 0 ? -1 : n;
}

int zin_expect(int fd, const char *what, const struct zin_ev *want, int n)
{
	struct zin_ev got[16];
	int i, bad = 0, k = zin_read(fd, n ? 3000 : QUIET_MS, got, 16);

	errno = 0;		/* pr_err() would show a stale one */

	for (i = 0; i < k || i < n; i++) {
		if (i < k && i < n && got[i].wd == want[i].wd && got[i].mask == want[i].mask &&
		    !strcmp(got[i].name, want[i].name))
			continue;
		bad++;
		if (i < k)
			pr_err("%s: event %d: wd %d mask %#x '%s'", what, i, got[i].wd, got[i].mask, got[i].name);
		if (i < n)
			pr_err("%s: event %d expected: wd %d mask %#x '%s'", what, i, want[i].wd,
			       want[i].mask, want[i].name);
	}
	return bad;
}

int zfan_expect(int fd, const char *what, const struct zfan_ev *want, int n)
{
	struct zfan_ev got[16];
	int i, bad = 0, k = zfan_read(fd, n ? 3000 : QUIET_MS, got, 16);

	errno = 0;

	for (i = 0; i < k || i < n; i++) {
		if (i < k && i < n && got[i].mask == want[i].mask && got[i].ino == want[i].ino)
			continue;
		bad++;
		if (i < k)
			pr_err("%s: event %d: mask %#llx inode %lu", what, i,
			       (unsigned long long)got[i].mask, (unsigned long)got[i].ino);
		if (i < n)
			pr_err("%s: event %d expected: mask %#llx inode %lu", what, i,
			       (unsigned long long)want[i].mask, (unsigned long)want[i].ino);
	}
	return bad;
}

/* /proc/self/fdinfo/FD, whole (malloc()ed); fail()s. */
static char *fdinfo(int fd)
{
	char path[64], *text;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (test_read_file(path, &text) < 0)
		fail("read %s", path);
	return text;
}

int zin_watch(int fd, int wd, unsigned long *ino, unsigned long *mask)
{
	char *text = fdinfo(fd), *save, *line;
	unsigned long w;
	int ret = -1;

	for (line = strtok_r(text, "\n", &save); line && ret; line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "inotify wd:%lx ino:%lx sdev:%*x mask:%lx", &w, ino, mask) == 3 && (int)w == wd)
			ret = 0;
	free(text);
	return ret;
}

unsigned long zfan_mark_mask(int fd, ino_t ino)
{
	char *text = fdinfo(fd), *save, *line;
	unsigned long i, m, found = 0;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "fanotify ino:%lx sdev:%*x mflags:%*x mask:%lx", &i, &m) == 2 && i == ino)
			found = m;
	free(text);
	return found;
}
