/*
 * ext-mount: the LXC console case.  A container's /dev/console (or any
 * other single file) is a bind mount of a file of the host: its source is
 * outside the container's visible tree, so refcr asks the plugins.
 *
 * DUMP_EXT_MOUNT(mountpoint, id): finds the mount `id` (mount ids are unique
 * system-wide, so the first /proc/PID/mountinfo listing it with that mount
 * point is its namespace), takes it only if it binds a single non-directory
 * file, and looks in its own namespace (refcr's, the host's) for a mount of
 * the same file system whose root contains the bind's root: the host path
 * of the source.  It checks that the path is that very file (same device and
 * inode as seen through /proc/PID/root) and records "PATH" in
 * ext-mount-ID.txt of the image directory.
 *
 * RESTORE_EXT_MOUNT(id, mountpoint, old_root, &is_file): reads the record
 * (anything else: -ENOTSUP) and binds old_root/PATH on mountpoint.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "criu-plugin.h"

#define LOG_PREFIX "ext-mount: "
#include "criu-log.h"

struct mnt {
	int id;
	unsigned int major, minor;
	char root[PATH_MAX], mp[PATH_MAX];
};

static int ext_mount_init(int stage)
{
	return 0;
}

static void ext_mount_exit(int stage, int ret)
{
}

CR_PLUGIN_REGISTER("ext-mount", ext_mount_init, ext_mount_exit)

/* mountinfo escapes blanks and backslashes as \ooo */
static void unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] && r[3]) {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* Calls match(m, arg) for each line of the file until it returns 1. */
static int scan(const char *path, int (*match)(struct mnt *, void *), void *arg, struct mnt *out)
{
	char *line = NULL;
	size_t len = 0;
	int found = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	while (!found && getline(&line, &len, f) > 0) {
		struct mnt m;
		int parent;

		if (sscanf(line, "%d %d %u:%u %4095s %4095s", &m.id, &parent, &m.major, &m.minor, m.root, m.mp) != 6)
			continue;
		unescape(m.root);
		unescape(m.mp);
		if (match(&m, arg)) {
			*out = m;
			found = 1;
		}
	}
	free(line);
	fclose(f);
	return found;
}

struct want {
	int id;
	const char *mp;
};

static int same_mount(struct mnt *m, void *arg)
{
	struct want *w = arg;

	return m->id == w->id && strcmp(m->mp, w->mp) == 0;
}

/* A host mount of the bind's file system whose root contains the bind's root. */
static int holds(struct mnt *m, void *arg)
{
	struct mnt *b = arg;
	size_t n = strlen(m->root);

	if (m->major != b->major || m->minor != b->minor)
		return 0;
	if (strcmp(m->root, "/") == 0)
		return 1;
	return strncmp(b->root, m->root, n) == 0 && (b->root[n] == '/' || b->root[n] == '\0');
}

/* The pid of a process in the namespace that has mount id (with that mount point). */
static int find_ns(struct want *w, struct mnt *out)
{
	char path[300];
	struct dirent *de;
	int pid = -1;
	DIR *d = opendir("/proc");

	if (!d)
		return -1;
	while (pid < 0 && (de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/mountinfo", de->d_name);
		if (scan(path, same_mount, w, out))
			pid = atoi(de->d_name);
	}
	closedir(d);
	return pid;
}

static int dump_ext_mount(char *mountpoint, int id)
{
	struct want w = { id, mountpoint };
	struct mnt bind, host;
	char inside[PATH_MAX + 64], src[2 * PATH_MAX], name[64];
	struct stat a, b;
	int pid, fd, len;
	const char *rest;

	pid = find_ns(&w, &bind);
	if (pid < 0)
		return -ENOTSUP;
	snprintf(inside, sizeof(inside), "/proc/%d/root%s", pid, mountpoint);
	if (stat(inside, &a) || S_ISDIR(a.st_mode))
		return -ENOTSUP;		/* only single files */
	if (!scan("/proc/self/mountinfo", holds, &bind, &host)) {
		pr_info("mount %d (%s): its file system is not mounted here\n", id, mountpoint);
		return -ENOTSUP;
	}
	rest = bind.root + (strcmp(host.root, "/") ? strlen(host.root) : 0);
	if (strcmp(host.mp, "/") == 0)
		snprintf(src, sizeof(src), "%s", *rest ? rest : "/");
	else
		snprintf(src, sizeof(src), "%s%s", host.mp, rest);
	if (stat(src, &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		pr_info("mount %d (%s): %s is not its source\n", id, mountpoint, src);
		return -ENOTSUP;
	}
	snprintf(name, sizeof(name), "ext-mount-%d.txt", id);
	fd = openat(criu_get_image_dir(), name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		pr_perror("cannot create %s", name);
		return -errno;
	}
	len = (int)strlen(src);
	if (write(fd, src, len) != len || close(fd)) {
		pr_perror("cannot write %s", name);
		return -EIO;
	}
	pr_info("mount %d (%s) is a bind of the host's %s\n", id, mountpoint, src);
	return 0;
}

/* A ".." component: the record must not climb out of old_root. */
static int has_dotdot(const char *path)
{
	const char *p = path;

	while ((p = strstr(p, ".."))) {
		if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
			return 1;
		p += 2;
	}
	return 0;
}

static int restore_ext_mount(int id, char *mountpoint, char *old_root, int *is_file)
{
	char name[64], path[PATH_MAX], src[2 * PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(name, sizeof(name), "ext-mount-%d.txt", id);
	fd = openat(criu_get_image_dir(), name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -ENOTSUP;
	n = read(fd, path, sizeof(path) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	path[n] = '\0';
	if (path[0] != '/' || has_dotdot(path) || memchr(path, '\n', n)) {
		pr_err("%s: %s is not a clean absolute path\n", name, path);
		return -EINVAL;
	}
	snprintf(src, sizeof(src), "%s%s", strcmp(old_root, "/") ? old_root : "", path);
	if (mount(src, mountpoint, NULL, MS_BIND, NULL)) {
		pr_perror("bind %s on %s", src, mountpoint);
		return -errno;
	}
	*is_file = 1;
	pr_info("mount %d: %s bound on %s\n", id, src, mountpoint);
	return 0;
}

CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_EXT_MOUNT, dump_ext_mount)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_EXT_MOUNT, restore_ext_mount)
