/*
 * trivial: the smallest useful v2 plugin.  It registers a function on every
 * hook, logs each call, and declines everything with -ENOTSUP, so it can sit
 * in any chain without changing what happens.  A template for new plugins.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "criu-plugin.h"

#define LOG_PREFIX "trivial: "
#include "criu-log.h"

static int trivial_init(int stage)
{
	pr_info("init(stage %d)\n", stage);
	return 0;
}

static void trivial_exit(int stage, int ret)
{
	pr_info("exit(stage %d, ret %d)\n", stage, ret);
}

/* Its descriptor name; plugin-check builds a copy under another name to chain with. */
#ifndef TRIVIAL_NAME
#define TRIVIAL_NAME "trivial"
#endif

CR_PLUGIN_REGISTER(TRIVIAL_NAME, trivial_init, trivial_exit)

static int dump_unix_sk(int fd, int id)
{
	pr_info("dump_unix_sk(fd %d, id %d)\n", fd, id);
	return -ENOTSUP;
}

static int restore_unix_sk(int id)
{
	pr_info("restore_unix_sk(id %d)\n", id);
	return -ENOTSUP;
}

static int dump_ext_file(int fd, int id)
{
	pr_info("dump_ext_file(fd %d, id %d)\n", fd, id);
	return -ENOTSUP;
}

static int restore_ext_file(int id, bool *retry_needed)
{
	pr_info("restore_ext_file(id %d)\n", id);
	return -ENOTSUP;
}

static int dump_ext_mount(char *mountpoint, int id)
{
	pr_info("dump_ext_mount(%s, id %d)\n", mountpoint, id);
	return -ENOTSUP;
}

static int restore_ext_mount(int id, char *mountpoint, char *old_root, int *is_file)
{
	pr_info("restore_ext_mount(id %d, %s, %s)\n", id, mountpoint, old_root);
	return -ENOTSUP;
}

static int dump_ext_link(int index, int type, char *kind)
{
	pr_info("dump_ext_link(index %d, type %d, %s)\n", index, type, kind);
	return -ENOTSUP;
}

static int handle_device_vma(int fd, const struct stat *st)
{
	pr_info("handle_device_vma(fd %d, rdev %#lx)\n", fd, (unsigned long)st->st_rdev);
	return -ENOTSUP;
}

static int update_vma_map(const char *path, const uint64_t addr, const uint64_t old_pgoff,
			  uint64_t *new_pgoff, int *plugin_fd)
{
	pr_info("update_vma_map(%s, %#llx, %llu)\n", path, (unsigned long long)addr,
		(unsigned long long)old_pgoff);
	return -ENOTSUP;
}

static int resume_devices_late(int pid)
{
	pr_info("resume_devices_late(pid %d)\n", pid);
	return -ENOTSUP;
}

static int pause_devices(int pid)
{
	pr_info("pause_devices(pid %d)\n", pid);
	return -ENOTSUP;
}

static int checkpoint_devices(int pid)
{
	pr_info("checkpoint_devices(pid %d)\n", pid);
	return -ENOTSUP;
}

static int post_forking(void)
{
	pr_info("post_forking()\n");
	return -ENOTSUP;
}

static int restore_init(void)
{
	pr_info("restore_init()\n");
	return -ENOTSUP;
}

static int dump_devices_late(int id)
{
	pr_info("dump_devices_late(id %d)\n", id);
	return -ENOTSUP;
}

CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_UNIX_SK, dump_unix_sk)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_UNIX_SK, restore_unix_sk)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_EXT_FILE, dump_ext_file)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_EXT_FILE, restore_ext_file)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_EXT_MOUNT, dump_ext_mount)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_EXT_MOUNT, restore_ext_mount)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_EXT_LINK, dump_ext_link)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA, handle_device_vma)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__UPDATE_VMA_MAP, update_vma_map)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESUME_DEVICES_LATE, resume_devices_late)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__PAUSE_DEVICES, pause_devices)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__CHECKPOINT_DEVICES, checkpoint_devices)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__POST_FORKING, post_forking)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_INIT, restore_init)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_DEVICES_LATE, dump_devices_late)
