/*
 * A plugin author's plugin, written for CRIU's public API v2 (criu-plugin.h,
 * criu-log.h) in CRIU's style, using every public name of both headers that
 * a plugin may use (the CRIU-internal log functions are in unprovided.c).
 * It takes /dev/kmsg, which refcr leaves to plugins: DUMP_EXT_FILE records
 * the fd's status flags in kmsg-ID.img of the image directory,
 * RESTORE_EXT_FILE opens /dev/kmsg again with them.  Every other hook is
 * registered too and declines (-ENOTSUP) or, for the per-task device hooks,
 * has nothing to do (0).
 */
#define LOG_PREFIX "kmsg-v2: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "criu-plugin.h"
#include "criu-log.h"

#if CRIU_PLUGIN_VERSION < CRIU_PLUGIN_GEN_VERSION(0, 2, 0) || CRIU_PLUGIN_VERSION_MAJOR != 0 || \
	CRIU_PLUGIN_VERSION_MINOR < 2 || CRIU_PLUGIN_VERSION_SUBLEVEL < 0
#error "needs the v2 plugin API"
#endif

static const char *const stage_names[CR_PLUGIN_STAGE_MAX] = {
	[CR_PLUGIN_STAGE__DUMP] = "dump",
	[CR_PLUGIN_STAGE__PRE_DUMP] = "pre-dump",
	[CR_PLUGIN_STAGE__RESTORE] = "restore",
};

/* Each hook declared with its prototype type, so a wrong signature fails to build. */
static CR_PLUGIN_HOOK__DUMP_UNIX_SK_t kmsg_dump_unix_sk;
static CR_PLUGIN_HOOK__RESTORE_UNIX_SK_t kmsg_restore_unix_sk;
static CR_PLUGIN_HOOK__DUMP_EXT_FILE_t kmsg_dump_file;
static CR_PLUGIN_HOOK__RESTORE_EXT_FILE_t kmsg_restore_file;
static CR_PLUGIN_HOOK__DUMP_EXT_MOUNT_t kmsg_dump_ext_mount;
static CR_PLUGIN_HOOK__RESTORE_EXT_MOUNT_t kmsg_restore_ext_mount;
static CR_PLUGIN_HOOK__DUMP_EXT_LINK_t kmsg_dump_ext_link;
static CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA_t kmsg_handle_device_vma;
static CR_PLUGIN_HOOK__UPDATE_VMA_MAP_t kmsg_update_vma_map;
static CR_PLUGIN_HOOK__RESUME_DEVICES_LATE_t kmsg_resume_devices_late;
static CR_PLUGIN_HOOK__PAUSE_DEVICES_t kmsg_pause_devices;
static CR_PLUGIN_HOOK__CHECKPOINT_DEVICES_t kmsg_checkpoint_devices;
static CR_PLUGIN_HOOK__POST_FORKING_t kmsg_post_forking;
static CR_PLUGIN_HOOK__RESTORE_INIT_t kmsg_restore_init;
static CR_PLUGIN_HOOK__DUMP_DEVICES_LATE_t kmsg_dump_devices_late;

/* A hook type made the way the header makes its own. */
DECLARE_PLUGIN_HOOK_ARGS(KMSG_CHECK, int fd);
static KMSG_CHECK_t is_kmsg;

static int kmsg_init(int stage)
{
	if (stage < 0 || stage >= CR_PLUGIN_STAGE_MAX) {
		pr_err("unknown stage %d\n", stage);
		return -1;
	}
	if (!pr_quelled(LOG_DEBUG))
		pr_debug("init(%s), API %#x (old API %#x)\n", stage_names[stage], CRIU_PLUGIN_VERSION,
			 CRIU_PLUGIN_VERSION_OLD);
	pr_info("init(%s) at log level %u (default %d)\n", stage_names[stage], log_get_loglevel(),
		DEFAULT_LOGLEVEL);
	return 0;
}

static void kmsg_exit(int stage, int ret)
{
	if (ret)
		pr_warn("exit(%s) after a failed run: %d\n", stage_names[stage], ret);
	else
		pr_info("exit(%s)\n", stage_names[stage]);
}

static int is_kmsg(int fd)
{
	struct stat st;

	if (fstat(fd, &st)) {
		pr_pwarn("fstat(%d)", fd);
		return 0;
	}
	return S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 11;
}

static int kmsg_dump_file(int fd, int id)
{
	char name[64];
	int flags, img;
	FILE *f;

	if (!is_kmsg(fd))
		return -ENOTSUP;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0) {
		pr_perror("F_GETFL of fd %d", fd);
		return -errno;
	}
	snprintf(name, sizeof(name), "kmsg-%d.img", id);
	img = openat(criu_get_image_dir(), name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (img < 0) {
		pr_perror("create %s", name);
		return -errno;
	}
	f = fdopen(img, "w");
	if (!f) {
		close(img);
		return -ENOMEM;
	}
	fprintf(f, "%d\n", flags & (O_ACCMODE | O_NONBLOCK | O_APPEND));
	if (fclose(f)) {
		pr_err_once("cannot write %s\n", name);
		return -EIO;
	}
	pr_msg("kmsg-v2: /dev/kmsg fd %d is object %d\n", fd, id);
	return 0;
}

static int kmsg_restore_file(int id, bool *retry_needed)
{
	char name[64];
	int flags = 0, img, fd;
	FILE *f;

	*retry_needed = false;
	snprintf(name, sizeof(name), "kmsg-%d.img", id);
	img = openat(criu_get_image_dir(), name, O_RDONLY | O_CLOEXEC);
	if (img < 0)
		return -ENOTSUP;		/* not one of ours */
	f = fdopen(img, "r");
	if (!f) {
		close(img);
		return -ENOMEM;
	}
	if (fscanf(f, "%d", &flags) != 1) {
		fclose(f);
		pr_err("%s is malformed\n", name);
		return -EINVAL;
	}
	fclose(f);
	fd = open("/dev/kmsg", flags & (O_ACCMODE | O_NONBLOCK | O_APPEND));
	if (fd < 0) {
		pr_perror("open /dev/kmsg");
		return -errno;
	}
	print_once(LOG_INFO, "kmsg-v2: first restore, object %d\n", id);
	return fd;
}

static int kmsg_dump_unix_sk(int fd, int id)
{
	return -ENOTSUP;
}

static int kmsg_restore_unix_sk(int id)
{
	return -ENOTSUP;
}

static int kmsg_dump_ext_mount(char *mountpoint, int id)
{
	return -ENOTSUP;
}

static int kmsg_restore_ext_mount(int id, char *mountpoint, char *old_root, int *is_file)
{
	return -ENOTSUP;
}

static int kmsg_dump_ext_link(int index, int type, char *kind)
{
	return -ENOTSUP;
}

static int kmsg_handle_device_vma(int fd, const struct stat *stat)
{
	return -ENOTSUP;
}

static int kmsg_update_vma_map(const char *path, const uint64_t addr, const uint64_t old_pgoff,
			       uint64_t *new_pgoff, int *plugin_fd)
{
	return -ENOTSUP;
}

static int kmsg_resume_devices_late(int pid)
{
	return 0;
}

static int kmsg_pause_devices(int pid)
{
	return 0;
}

static int kmsg_checkpoint_devices(int pid)
{
	return 0;
}

static int kmsg_post_forking(void)
{
	return 0;
}

static int kmsg_restore_init(void)
{
	pr_warn_once("restore_init: nothing to prepare\n");
	return 0;
}

static int kmsg_dump_devices_late(int id)
{
	return 0;
}

CR_PLUGIN_REGISTER("kmsg-v2", kmsg_init, kmsg_exit)

CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_UNIX_SK, kmsg_dump_unix_sk)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_UNIX_SK, kmsg_restore_unix_sk)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_EXT_FILE, kmsg_dump_file)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_EXT_FILE, kmsg_restore_file)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_EXT_MOUNT, kmsg_dump_ext_mount)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_EXT_MOUNT, kmsg_restore_ext_mount)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_EXT_LINK, kmsg_dump_ext_link)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA, kmsg_handle_device_vma)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__UPDATE_VMA_MAP, kmsg_update_vma_map)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESUME_DEVICES_LATE, kmsg_resume_devices_late)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__PAUSE_DEVICES, kmsg_pause_devices)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__CHECKPOINT_DEVICES, kmsg_checkpoint_devices)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__POST_FORKING, kmsg_post_forking)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_INIT, kmsg_restore_init)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_DEVICES_LATE, kmsg_dump_devices_late)

/* Build-time checks of the descriptor and the hook numbers (the ABI). */
_Static_assert(CR_PLUGIN_HOOK__MAX == 15, "hook count");
_Static_assert(CR_PLUGIN_HOOK__DUMP_DEVICES_LATE == 14, "hook numbers");
_Static_assert(sizeof(((cr_plugin_desc_t *)0)->hooks) / sizeof(void *) == CR_PLUGIN_HOOK__MAX, "hooks[]");
_Static_assert(LOG_MSG == 0 && LOG_ERROR == 1 && LOG_WARN == 2 && LOG_INFO == 3 && LOG_DEBUG == 4 &&
	       LOG_UNSET == -1, "log levels");
