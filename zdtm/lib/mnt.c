/* Mount scenarios' helpers, see zmnt.h. */
#include "zdtmtst.h"
#include "zmnt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static void unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] && r[3]) {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static int parse(const char *line, struct zmnt *m)
{
	const char *sep = strstr(line, " - ");
	char optional[256] = "";
	int n = 0;

	memset(m, 0, sizeof(*m));
	if (!sep || sscanf(line, "%d %d %u:%u %511s %511s %255s %n", &m->id, &m->parent, &m->major, &m->minor,
			   m->root, m->mp, m->opts, &n) < 7)
		return -1;
	if (line + n < sep)
		snprintf(optional, sizeof(optional), "%.*s", (int)(sep - line - n), line + n);
	snprintf(m->optional, sizeof(m->optional), "%s", optional);
	if (sscanf(sep + 3, "%63s %255s %511s", m->fstype, m->source, m->sopts) < 2)
		return -1;
	unescape(m->root);
	unescape(m->mp);
	return 0;
}

static int scan(int (*match)(const struct zmnt *, const void *), const void *arg, struct zmnt *out)
{
	char line[2048];
	struct zmnt m;
	int found = 0;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f) {
		pr_err("open /proc/self/mountinfo");
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (parse(line, &m) == 0 && match(&m, arg)) {
			if (out)
				*out = m;	/* the last one: the topmost of a stack */
			found++;
		}
	}
	fclose(f);
	return found;
}

static int by_mp(const struct zmnt *m, const void *mp) { return strcmp(m->mp, mp) == 0; }
static int by_id(const struct zmnt *m, const void *id) { return m->id == *(const int *)id; }

int zmnt_find(const char *mountpoint, struct zmnt *out)
{
	if (scan(by_mp, mountpoint, out) <= 0) {
		pr_err("no mount at %s", mountpoint);
		return -1;
	}
	return 0;
}

int zmnt_by_id(int id, struct zmnt *out)
{
	return scan(by_id, &id, out) > 0 ? 0 : -1;
}

int zmnt_count(const char *mountpoint)
{
	return scan(by_mp, mountpoint, NULL);
}

int zmnt_has(const char *list, const char *opt)
{
	size_t n = strlen(opt);
	const char *p = list;

	while ((p = strstr(p, opt))) {
		if ((p == list || p[-1] == ',' || p[-1] == ' ') && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return 1;
		p += n;
	}
	return 0;
}

int zmnt_tag(const struct zmnt *m, const char *kind)
{
	char key[32];
	const char *p;
	size_t n;

	n = (size_t)snprintf(key, sizeof(key), "%s:", kind);
	for (p = m->optional; (p = strstr(p, key)); p += n)
		if (p == m->optional || p[-1] == ' ')
			return atoi(p + n);
	return 0;
}

void zmnt_mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)
{
	char path[512], *s;

	snprintf(path, sizeof(path), "%s", target);
	for (s = path + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			if (mkdir(path, 0755) && errno != EEXIST)
				fail("mkdir %s", path);
			*s = '/';
		}
	}
	if (!(flags & (MS_REMOUNT | MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE | MS_MOVE)) &&
	    mkdir(path, 0755) && errno != EEXIST)
		fail("mkdir %s", path);
	if (mount(src, target, fstype, flags, data))
		fail("mount %s on %s (%s)", src ? src : "-", target, fstype ? fstype : "-");
}

const char *zmnt_abs(int slot, const char *rel)
{
	static char buf[4][512];
	char cwd[400];

	if (!getcwd(cwd, sizeof(cwd)))
		fail("getcwd");
	snprintf(buf[slot & 3], sizeof(buf[0]), "%s/%s", cwd, rel);
	return buf[slot & 3];
}

void zmnt_put(const char *path, size_t len, unsigned int seed)
{
	char *buf = malloc(len ? len : 1);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (!buf || fd < 0)
		fail("write %s", path);
	datagen(buf, len, seed);
	if (test_write_all(fd, buf, len) != (ssize_t)len || close(fd))
		fail("write %s", path);
	free(buf);
}

int zmnt_has_data(const char *path, size_t len, unsigned int seed)
{
	char *buf = malloc(len ? len : 1);
	int fd = open(path, O_RDONLY);
	int ok = buf && fd >= 0 && test_read_all(fd, buf, len) == (ssize_t)len && datachk(buf, len, seed) == 0;

	if (fd >= 0)
		close(fd);
	free(buf);
	return ok;
}
