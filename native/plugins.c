/*
 * The plugin host: what refcr's process provides to CRIU-style plugins.
 *
 * Compiled into the cffi extension refcr._plugins.  Plugins resolve
 * criu_get_image_dir(), print_on_level(), vprint_on_level(),
 * log_get_loglevel() and log_set_loglevel() from it (what criu-plugin.h and
 * criu-log.h say the host provides; tests/plugins/test_compat.py checks the
 * exported symbols with nm -D):
 * refcr_host_export() re-opens this very library with RTLD_GLOBAL, so its
 * symbols are visible to every library dlopen()ed afterwards.
 *
 * The rest is the loader's native half: dlopen, the descriptor (found as
 * CR_PLUGIN_DESC, or generated from old-style symbol names), and calling a
 * hook with the right prototype.  Python decides when and in which process
 * (see refcr/plugins/host.py).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "criu-plugin.h"
#include "criu-log.h"
#include "plugins.h"

/* The Python side (extern "Python" in build_plugins.py). */
static void refcr_plugin_log(unsigned int level, const char *msg);

static int host_image_dir = -1;
static unsigned int host_loglevel = DEFAULT_LOGLEVEL;

void refcr_host_setup(int image_dir_fd, int loglevel)
{
	host_image_dir = image_dir_fd;
	host_loglevel = loglevel < 0 ? 0 : (unsigned int)loglevel;
}

int criu_get_image_dir(void)
{
	return host_image_dir;
}

unsigned int log_get_loglevel(void)
{
	return host_loglevel;
}

/* The plugin's own messages only: refcr's level stays what -v said. */
void log_set_loglevel(unsigned int loglevel)
{
	host_loglevel = loglevel;
}

void vprint_on_level(unsigned int loglevel, const char *format, va_list params)
{
	int saved = errno;
	char small[1024], *buf = small;
	va_list again;
	int n;

	if (loglevel != LOG_MSG && loglevel > host_loglevel)
		goto out;
	va_copy(again, params);
	n = vsnprintf(small, sizeof(small), format, params);
	if (n >= 0 && (size_t)n >= sizeof(small)) {
		buf = malloc((size_t)n + 1);
		if (!buf)
			buf = small; /* truncated, still something */
		else
			vsnprintf(buf, (size_t)n + 1, format, again);
	}
	va_end(again);
	if (n < 0)
		goto out;
	refcr_plugin_log(loglevel, buf);
	if (buf != small)
		free(buf);
out:
	errno = saved;
}

void print_on_level(unsigned int loglevel, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	vprint_on_level(loglevel, format, ap);
	va_end(ap);
}

int refcr_host_export(void)
{
	Dl_info info;

	if (!dladdr((void *)criu_get_image_dir, &info) || !info.dli_fname)
		return -1;
	return dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) ? 0 : -1;
}

void *refcr_dlopen(const char *path, int now, char *err, int errlen)
{
	void *h = dlopen(path, (now ? RTLD_NOW : RTLD_LAZY) | RTLD_LOCAL);

	if (!h)
		snprintf(err, (size_t)errlen, "%s", dlerror());
	return h;
}

/* Old-style names (API 0.1.0); the device hooks' names are refcr's. */
static const char *const old_names[CR_PLUGIN_HOOK__MAX] = {
	[CR_PLUGIN_HOOK__DUMP_UNIX_SK]		= "cr_plugin_dump_unix_sk",
	[CR_PLUGIN_HOOK__RESTORE_UNIX_SK]	= "cr_plugin_restore_unix_sk",
	[CR_PLUGIN_HOOK__DUMP_EXT_FILE]		= "cr_plugin_dump_file",
	[CR_PLUGIN_HOOK__RESTORE_EXT_FILE]	= "cr_plugin_restore_file",
	[CR_PLUGIN_HOOK__DUMP_EXT_MOUNT]	= "cr_plugin_dump_ext_mount",
	[CR_PLUGIN_HOOK__RESTORE_EXT_MOUNT]	= "cr_plugin_restore_ext_mount",
	[CR_PLUGIN_HOOK__DUMP_EXT_LINK]		= "cr_plugin_dump_ext_link",
	[CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA]	= "cr_plugin_handle_device_vma",
	[CR_PLUGIN_HOOK__UPDATE_VMA_MAP]	= "cr_plugin_update_vma_map",
	[CR_PLUGIN_HOOK__RESUME_DEVICES_LATE]	= "cr_plugin_resume_devices_late",
	[CR_PLUGIN_HOOK__PAUSE_DEVICES]		= "cr_plugin_pause_devices",
	[CR_PLUGIN_HOOK__CHECKPOINT_DEVICES]	= "cr_plugin_checkpoint_devices",
	[CR_PLUGIN_HOOK__POST_FORKING]		= "cr_plugin_post_forking",
	[CR_PLUGIN_HOOK__RESTORE_INIT]		= "cr_plugin_restore_init",
	[CR_PLUGIN_HOOK__DUMP_DEVICES_LATE]	= "cr_plugin_dump_devices_late",
};

cr_plugin_desc_t *refcr_plugin_desc(void *h, const char *name, int *generated)
{
	cr_plugin_desc_t *d = dlsym(h, "CR_PLUGIN_DESC");
	int i;

	*generated = 0;
	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->name = strdup(name);
	d->version = CRIU_PLUGIN_VERSION_OLD;
	d->max_hooks = CR_PLUGIN_HOOK__MAX;
	d->init = (int (*)(int))dlsym(h, "cr_plugin_init");
	d->exit = (void (*)(int, int))dlsym(h, "cr_plugin_fini");
	for (i = 0; i < CR_PLUGIN_HOOK__MAX; i++)
		d->hooks[i] = dlsym(h, old_names[i]);
	*generated = 1;
	/* No descriptor and no cr_plugin_* function: an ordinary library, not a plugin. */
	if (!d->init && !d->exit) {
		for (i = 0; i < CR_PLUGIN_HOOK__MAX && !d->hooks[i]; i++)
			;
		if (i == CR_PLUGIN_HOOK__MAX) {
			free((void *)d->name);
			free(d);
			*generated = 2;
			return NULL;
		}
	}
	return d;
}

int refcr_plugin_init(cr_plugin_desc_t *d, int stage)
{
	return d->init ? d->init(stage) : 0;
}

void refcr_plugin_exit(cr_plugin_desc_t *d, int stage, int ret)
{
	if (d->exit)
		d->exit(stage, ret);
}

int refcr_plugin_has_hook(cr_plugin_desc_t *d, int hook)
{
	return hook >= 0 && hook < CR_PLUGIN_HOOK__MAX && (unsigned int)hook < d->max_hooks &&
	       d->hooks[hook] != NULL;
}

/*
 * Call one hook with its own prototype.  Arguments and results travel in
 * struct refcr_hook_args (see plugins.h for which member is which).
 */
int refcr_plugin_call(cr_plugin_desc_t *d, int hook, struct refcr_hook_args *a)
{
	void *fn;

	if (!refcr_plugin_has_hook(d, hook))
		return -ENOTSUP;
	fn = d->hooks[hook];

	switch (hook) {
	case CR_PLUGIN_HOOK__DUMP_UNIX_SK:
		return ((CR_PLUGIN_HOOK__DUMP_UNIX_SK_t *)fn)(a->i0, a->i1);
	case CR_PLUGIN_HOOK__DUMP_EXT_FILE:
		return ((CR_PLUGIN_HOOK__DUMP_EXT_FILE_t *)fn)(a->i0, a->i1);
	case CR_PLUGIN_HOOK__RESTORE_UNIX_SK:
		return ((CR_PLUGIN_HOOK__RESTORE_UNIX_SK_t *)fn)(a->i0);
	case CR_PLUGIN_HOOK__RESTORE_EXT_FILE: {
		/* also right for the old (int id) prototype: see criu-plugin.h */
		bool retry = false;
		int ret = ((CR_PLUGIN_HOOK__RESTORE_EXT_FILE_t *)fn)(a->i0, &retry);

		a->retry = retry;
		return ret;
	}
	case CR_PLUGIN_HOOK__DUMP_EXT_MOUNT:
		return ((CR_PLUGIN_HOOK__DUMP_EXT_MOUNT_t *)fn)(a->s0, a->i0);
	case CR_PLUGIN_HOOK__RESTORE_EXT_MOUNT:
		return ((CR_PLUGIN_HOOK__RESTORE_EXT_MOUNT_t *)fn)(a->i0, a->s0, a->s1, &a->out_int);
	case CR_PLUGIN_HOOK__DUMP_EXT_LINK:
		return ((CR_PLUGIN_HOOK__DUMP_EXT_LINK_t *)fn)(a->i0, a->i1, a->s0);
	case CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA: {
		struct stat st;

		if (fstat(a->i0, &st))
			return -errno;
		return ((CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA_t *)fn)(a->i0, &st);
	}
	case CR_PLUGIN_HOOK__UPDATE_VMA_MAP:
		return ((CR_PLUGIN_HOOK__UPDATE_VMA_MAP_t *)fn)(a->s0, a->u0, a->u1, &a->out_u64, &a->out_int);
	case CR_PLUGIN_HOOK__RESUME_DEVICES_LATE:
	case CR_PLUGIN_HOOK__PAUSE_DEVICES:
	case CR_PLUGIN_HOOK__CHECKPOINT_DEVICES:
	case CR_PLUGIN_HOOK__DUMP_DEVICES_LATE:
		return ((int (*)(int))fn)(a->i0);
	case CR_PLUGIN_HOOK__POST_FORKING:
	case CR_PLUGIN_HOOK__RESTORE_INIT:
		return ((int (*)(void))fn)();
	}
	return -ENOTSUP;
}
