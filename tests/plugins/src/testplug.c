/*
 * One source, many test plugins: the tests compile it with -D options.
 *
 *   PLUGIN_NAME="x"      descriptor name (v2) / log prefix
 *   OLD_STYLE            old API: functions found by name, no CR_PLUGIN_DESC
 *   HANDLE               DUMP_EXT_FILE takes files whose path ends in CLAIM
 *                        (default ".fakedev"): records path, flags and offset
 *                        in <PLUGIN_NAME>.<id> in the image directory;
 *                        RESTORE_EXT_FILE reopens it.  Otherwise both decline.
 *   INIT_FAIL            init() returns -1
 *   CRASH_DUMP           DUMP_EXT_FILE dereferences NULL
 *   HANG_DUMP            DUMP_EXT_FILE never returns
 *   DEVICE_VMA           HANDLE_DEVICE_VMA takes block devices of major
 *                        DEVICE_MAJOR (default 7, loop), declines the rest
 *   VMA_MAP              UPDATE_VMA_MAP: a mapping of a file whose path ends
 *                        in CLAIM gets PATH.new at offset 0 instead (returns 1)
 * Deliberately broken for `refcr plugin-check`, each caught by one check:
 *   BAD_VERSION          descriptor version newer than refcr's API
 *   BAD_MAX_HOOKS        descriptor max_hooks above CR_PLUGIN_HOOK__MAX
 *   LEAK_FD              DUMP_EXT_FILE leaves an fd open
 *   CHDIR                DUMP_EXT_FILE changes the cwd
 *   UMASK                DUMP_EXT_FILE changes the umask
 *   GREEDY               DUMP_EXT_FILE claims every object (returns 0)
 *   WRITE_OUTSIDE        DUMP_EXT_FILE creates a file in the cwd
 *   EXIT_CRASH           exit() crashes
 *   UNRESOLVED           calls a function refcr does not provide
 *   SAME_ID              DUMP_EXT_FILE claims an id it was asked about before
 *                        (chain: the same objects are asked twice)
 *   LOSE_FLAGS           with HANDLE: RESTORE_EXT_FILE drops O_NONBLOCK
 *                        (scenario: the program checks its flags)
 *   (PLUGIN_NAME="trivial", the template's name: chain with --with trivial.so)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "criu-plugin.h"
#include "criu-log.h"

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "testplug"
#endif
#ifndef CLAIM
#define CLAIM ".fakedev"
#endif

#ifdef UNRESOLVED
extern int criu_internal_function_nobody_has(void);
#endif

static int t_init(int stage)
{
#ifdef UNRESOLVED
	if (stage == 99)
		return criu_internal_function_nobody_has();
#endif
	pr_info("%s: init(stage %d)\n", PLUGIN_NAME, stage);
#ifdef INIT_FAIL
	pr_err("%s: init fails on purpose\n", PLUGIN_NAME);
	return -1;
#endif
	return 0;
}

static void t_exit(int stage, int ret)
{
	pr_info("%s: exit(stage %d, ret %d)\n", PLUGIN_NAME, stage, ret);
#ifdef EXIT_CRASH
	*(volatile int *)0 = 1;
#endif
}

static int claims(int fd, char *path, size_t len)
{
	char link[64];
	ssize_t n;
	size_t cl = strlen(CLAIM);

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, len - 1);
	if (n < 0)
		return 0;
	path[n] = 0;
	return (size_t)n >= cl && !strcmp(path + n - cl, CLAIM);
}

static int t_dump_file(int fd, int id)
{
	char path[4096], name[64];
	FILE *f;
	int img;

	pr_info("%s: dump_ext_file(id %d)\n", PLUGIN_NAME, id);
#ifdef CRASH_DUMP
	*(volatile int *)0 = 1;
#endif
#ifdef HANG_DUMP
	for (;;)
		pause();
#endif
#ifdef LEAK_FD
	open("/", O_RDONLY);
#endif
#ifdef CHDIR
	if (chdir("/"))
		return -errno;
#endif
#ifdef UMASK
	umask(0);
#endif
#ifdef WRITE_OUTSIDE
	close(open("plugin-was-here", O_WRONLY | O_CREAT, 0600));
#endif
#ifdef GREEDY
	return 0;
#endif
#ifdef SAME_ID
	{
		static int seen[64], nseen;
		int i;

		for (i = 0; i < nseen; i++)
			if (seen[i] == id)
				return 0;
		if (nseen < 64)
			seen[nseen++] = id;
	}
#endif
#ifdef HANDLE
	if (!claims(fd, path, sizeof(path)))
		return -ENOTSUP;
	snprintf(name, sizeof(name), "%s.%d", PLUGIN_NAME, id);
	img = openat(criu_get_image_dir(), name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (img < 0) {
		pr_perror("%s: cannot create %s", PLUGIN_NAME, name);
		return -errno;
	}
	f = fdopen(img, "w");
	fprintf(f, "%d %lld %s\n", fcntl(fd, F_GETFL), (long long)lseek(fd, 0, SEEK_CUR), path);
	fclose(f);
	pr_info("%s: took %s as id %d\n", PLUGIN_NAME, path, id);
	return 0;
#else
	(void)claims; (void)path; (void)name; (void)f; (void)img;
	return -ENOTSUP;
#endif
}

static int t_restore_file(int id)
{
	char path[4096], name[64];
	long long pos;
	int flags, fd;
	FILE *f;

	pr_info("%s: restore_ext_file(id %d)\n", PLUGIN_NAME, id);
#ifdef HANDLE
	snprintf(name, sizeof(name), "%s.%d", PLUGIN_NAME, id);
	fd = openat(criu_get_image_dir(), name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOTSUP;
	f = fdopen(fd, "r");
	if (fscanf(f, "%d %lld %4095s", &flags, &pos, path) != 3) {
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
#ifdef LOSE_FLAGS
	flags &= ~O_NONBLOCK;
#endif
	fd = open(path, flags & ~(O_CREAT | O_EXCL | O_TRUNC));
	if (fd < 0)
		return -errno;
	lseek(fd, pos, SEEK_SET);
	return fd;
#else
	(void)path; (void)name; (void)pos; (void)flags; (void)fd; (void)f;
	return -ENOTSUP;
#endif
}

#if !defined(OLD_STYLE) && (defined(DEVICE_VMA) || defined(VMA_MAP))
#ifndef DEVICE_MAJOR
#define DEVICE_MAJOR 7
#endif

static int t_device_vma(int fd, const struct stat *st)
{
	pr_info("%s: handle_device_vma(%u:%u)\n", PLUGIN_NAME, major(st->st_rdev), minor(st->st_rdev));
#ifdef DEVICE_VMA
	if (S_ISBLK(st->st_mode) && major(st->st_rdev) == DEVICE_MAJOR)
		return 0;
#endif
	return -ENOTSUP;
}

static int t_update_vma_map(const char *path, const uint64_t addr, const uint64_t old_pgoff,
			    uint64_t *new_pgoff, int *plugin_fd)
{
	char other[4096];
	size_t n = strlen(path), cl = strlen(CLAIM);

	pr_info("%s: update_vma_map(%s, %#llx, %#llx)\n", PLUGIN_NAME, path,
		(unsigned long long)addr, (unsigned long long)old_pgoff);
#ifdef VMA_MAP
	if (n >= cl && !strcmp(path + n - cl, CLAIM)) {
		snprintf(other, sizeof(other), "%s.new", path);
		*plugin_fd = open(other, O_RDWR | O_CLOEXEC);
		if (*plugin_fd < 0)
			return -errno;
		*new_pgoff = 0;
		return 1;
	}
#endif
	(void)other; (void)n; (void)cl;
	return -ENOTSUP;
}
#endif

#ifdef OLD_STYLE
int cr_plugin_init(int stage)
{
	return t_init(stage);
}

void cr_plugin_fini(int stage, int ret)
{
	t_exit(stage, ret);
}

int cr_plugin_dump_file(int fd, int id)
{
	return t_dump_file(fd, id);
}

int cr_plugin_restore_file(int id)
{
	return t_restore_file(id);
}
#else
CR_PLUGIN_REGISTER(PLUGIN_NAME, t_init, t_exit)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_EXT_FILE, t_dump_file)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_EXT_FILE, t_restore_file)
#if defined(DEVICE_VMA) || defined(VMA_MAP)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA, t_device_vma)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__UPDATE_VMA_MAP, t_update_vma_map)
#endif

static void __attribute__((constructor)) t_adjust(void)
{
#ifdef BAD_VERSION
	CR_PLUGIN_DESC.version = CRIU_PLUGIN_GEN_VERSION(9, 0, 0);
#endif
#ifdef BAD_MAX_HOOKS
	CR_PLUGIN_DESC.max_hooks = CR_PLUGIN_HOOK__MAX + 5;
#endif
}
#endif
