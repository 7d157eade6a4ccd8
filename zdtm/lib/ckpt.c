/* Checkpoint chains with the harness: see ckpt.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "zdtmtst.h"
#include "ckpt.h"

static void workpath(char *buf, size_t size, const char *fmt, int i)
{
	char dir[PATH_MAX], name[64];

	snprintf(dir, sizeof(dir), "%s", test_pidfile);
	snprintf(name, sizeof(name), fmt, i);
	if (snprintf(buf, size, "%s/%s", dirname(dir), name) >= (int)size)
		fail("work dir path too long");
}

static void write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || test_write_all(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd))
		fail("can't write %s", tmp);
	if (rename(tmp, path))
		fail("can't rename %s", tmp);
}

void test_checkpoint_written(int i, const void *start, size_t len, long npages)
{
	char path[PATH_MAX], text[128];

	workpath(path, sizeof(path), "ckpt-%d.written", i);
	snprintf(text, sizeof(text), "%lu %lu %ld\n", (unsigned long)start,
		 (unsigned long)start + len, npages);
	write_file(path, text);
}

void test_checkpoint(int i)
{
	char go[PATH_MAX], done[PATH_MAX];
	int waited;

	workpath(go, sizeof(go), "ckpt-%d.go", i);
	workpath(done, sizeof(done), "ckpt-%d.done", i);
	/* mknod, not open: no fd appears while the harness may be taking its
	 * snapshot of the process (right after test_daemon()) */
	if (mknod(go, S_IFREG | 0644, 0) && errno != EEXIST)
		fail("can't create %s", go);
	for (waited = 0; access(done, F_OK); waited++) {
		if (!test_go())
			return;		/* the harness went on to the real dump */
		if (waited > 12000)
			fail("checkpoint %d not taken within 120 s", i);
		usleep(10000);
	}
}

int test_restored_checkpoint(void)
{
	char path[PATH_MAX], buf[32] = "";
	int fd, n;

	workpath(path, sizeof(path), "restored", 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		fail("can't open %s", path);
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		fail("can't read %s", path);
	return atoi(buf);
}

int test_count_fds_to(const char *target)
{
	char path[300], link[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d = opendir("/proc/self/fd");

	if (!d)
		fail("opendir /proc/self/fd");
	while ((de = readdir(d))) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len > 0 && (link[len] = 0, !strcmp(link, target)))
			n++;
	}
	closedir(d);
	return n;
}
