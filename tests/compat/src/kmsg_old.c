/*
 * The same /dev/kmsg plugin written for CRIU's first plugin API (0.1.0):
 * functions found by name, declared with the deprecated types of
 * criu-plugin.h (all of them), no descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "criu-plugin.h"
#include "criu-log.h"

cr_plugin_init_t cr_plugin_init;
cr_plugin_fini_t cr_plugin_fini;
cr_plugin_dump_unix_sk_t cr_plugin_dump_unix_sk;
cr_plugin_restore_unix_sk_t cr_plugin_restore_unix_sk;
cr_plugin_dump_file_t cr_plugin_dump_file;
cr_plugin_restore_file_t cr_plugin_restore_file;
cr_plugin_dump_ext_mount_t cr_plugin_dump_ext_mount;
cr_plugin_restore_ext_mount_t cr_plugin_restore_ext_mount;
cr_plugin_dump_ext_link_t cr_plugin_dump_ext_link;
cr_plugin_handle_device_vma_t cr_plugin_handle_device_vma;
cr_plugin_update_vma_map_t cr_plugin_update_vma_map;
cr_plugin_resume_devices_late_t cr_plugin_resume_devices_late;
cr_plugin_post_forking_t cr_plugin_post_forking;

int cr_plugin_init(void)
{
	pr_info("kmsg-old: init\n");
	return 0;
}

void cr_plugin_fini(void)
{
	pr_info("kmsg-old: fini\n");
}

static int is_kmsg(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 11;
}

int cr_plugin_dump_file(int fd, int id)
{
	char name[64], buf[32];
	int img, n;

	if (!is_kmsg(fd))
		return -ENOTSUP;
	snprintf(name, sizeof(name), "kmsg-old-%d.img", id);
	img = openat(criu_get_image_dir(), name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (img < 0) {
		pr_perror("create %s", name);
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK | O_APPEND));
	if (write(img, buf, n) != n) {
		pr_perror("write %s", name);
		close(img);
		return -1;
	}
	close(img);
	return 0;
}

int cr_plugin_restore_file(int id)
{
	char name[64], buf[32] = "";
	int img, fd;
	ssize_t n;

	snprintf(name, sizeof(name), "kmsg-old-%d.img", id);
	img = openat(criu_get_image_dir(), name, O_RDONLY | O_CLOEXEC);
	if (img < 0)
		return -ENOTSUP;
	n = read(img, buf, sizeof(buf) - 1);
	close(img);
	if (n <= 0)
		return -1;
	fd = open("/dev/kmsg", atoi(buf));
	if (fd < 0)
		pr_perror("open /dev/kmsg");
	return fd;
}

int cr_plugin_dump_unix_sk(int fd, int id)
{
	return -ENOTSUP;
}

int cr_plugin_restore_unix_sk(int id)
{
	return -ENOTSUP;
}

int cr_plugin_dump_ext_mount(char *mountpoint, int id)
{
	return -ENOTSUP;
}

int cr_plugin_restore_ext_mount(int id, char *mountpoint, char *old_root, int *is_file)
{
	return -ENOTSUP;
}

int cr_plugin_dump_ext_link(int index, int type, char *kind)
{
	return -ENOTSUP;
}

int cr_plugin_handle_device_vma(int fd, const struct stat *stat)
{
	return -ENOTSUP;
}

int cr_plugin_update_vma_map(const char *path, const uint64_t addr, const uint64_t old_pgoff,
			     uint64_t *new_pgoff, int *plugin_fd)
{
	return -ENOTSUP;
}

int cr_plugin_resume_devices_late(int pid)
{
	return 0;
}

int cr_plugin_post_forking(void)
{
	return 0;
}
