/*
 * criu-plugin.h: the plugin API of refcr, source-compatible with CRIU's.
 *
 * A plugin is a shared library.  It describes itself with a descriptor named
 * CR_PLUGIN_DESC (CR_PLUGIN_REGISTER or CR_PLUGIN_REGISTER_DUMMY) and hangs
 * functions on hooks with CR_PLUGIN_REGISTER_HOOK.  Libraries written for the
 * first API (functions found by name: cr_plugin_init, cr_plugin_dump_file, ...)
 * still load; refcr builds a descriptor for them and warns.
 *
 * A hook returns -ENOTSUP when the object is not its business; the next
 * plugin in the chain (plugins load in sorted file name order) is asked
 * then.  Any other value is the answer: 0 or a new fd for success, another
 * negative errno for failure.
 *
 * Build flags: `refcr plugin-cflags` prints -I<dir of this header>.
 */
#ifndef __CRIU_PLUGIN_H__
#define __CRIU_PLUGIN_H__

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#define CRIU_PLUGIN_GEN_VERSION(a, b, c)	(((a) << 16) + ((b) << 8) + (c))
#define CRIU_PLUGIN_VERSION_MAJOR		0
#define CRIU_PLUGIN_VERSION_MINOR		2
#define CRIU_PLUGIN_VERSION_SUBLEVEL		0

/* The first API: plain functions looked up by name. */
#define CRIU_PLUGIN_VERSION_OLD			CRIU_PLUGIN_GEN_VERSION(0, 1, 0)

/* The API these headers describe. */
#define CRIU_PLUGIN_VERSION						\
	CRIU_PLUGIN_GEN_VERSION(CRIU_PLUGIN_VERSION_MAJOR,		\
				CRIU_PLUGIN_VERSION_MINOR,		\
				CRIU_PLUGIN_VERSION_SUBLEVEL)

/* What the run is doing: passed to init() and exit(). */
enum {
	CR_PLUGIN_STAGE__DUMP,
	CR_PLUGIN_STAGE__PRE_DUMP,
	CR_PLUGIN_STAGE__RESTORE,

	CR_PLUGIN_STAGE_MAX
};

/* The hooks.  The numbers are part of the ABI: never reorder. */
enum {
	CR_PLUGIN_HOOK__DUMP_UNIX_SK		= 0,
	CR_PLUGIN_HOOK__RESTORE_UNIX_SK		= 1,
	CR_PLUGIN_HOOK__DUMP_EXT_FILE		= 2,
	CR_PLUGIN_HOOK__RESTORE_EXT_FILE	= 3,
	CR_PLUGIN_HOOK__DUMP_EXT_MOUNT		= 4,
	CR_PLUGIN_HOOK__RESTORE_EXT_MOUNT	= 5,
	CR_PLUGIN_HOOK__DUMP_EXT_LINK		= 6,
	CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA	= 7,
	CR_PLUGIN_HOOK__UPDATE_VMA_MAP		= 8,
	CR_PLUGIN_HOOK__RESUME_DEVICES_LATE	= 9,
	CR_PLUGIN_HOOK__PAUSE_DEVICES		= 10,
	CR_PLUGIN_HOOK__CHECKPOINT_DEVICES	= 11,
	CR_PLUGIN_HOOK__POST_FORKING		= 12,
	CR_PLUGIN_HOOK__RESTORE_INIT		= 13,
	CR_PLUGIN_HOOK__DUMP_DEVICES_LATE	= 14,

	CR_PLUGIN_HOOK__MAX
};

/*
 * The prototype of each hook, as the type CR_PLUGIN_HOOK__<NAME>_t.
 * Plugins need not use them; they document what each hook is called with.
 */
#define DECLARE_PLUGIN_HOOK_ARGS(__hook, ...)	typedef int(__hook##_t)(__VA_ARGS__)

DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__DUMP_UNIX_SK, int fd, int id);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__RESTORE_UNIX_SK, int id);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__DUMP_EXT_FILE, int fd, int id);
/*
 * Older plugins take (int id) only; newer ones also get retry_needed, which
 * they set to ask to be called again later.  refcr always passes both, which
 * the x86-64 calling convention makes harmless for a one-argument function.
 */
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__RESTORE_EXT_FILE, int id, bool *retry_needed);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__DUMP_EXT_MOUNT, char *mountpoint, int id);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__RESTORE_EXT_MOUNT, int id, char *mountpoint,
			 char *old_root, int *is_file);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__DUMP_EXT_LINK, int index, int type, char *kind);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA, int fd, const struct stat *stat);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__UPDATE_VMA_MAP, const char *path, const uint64_t addr,
			 const uint64_t old_pgoff, uint64_t *new_pgoff, int *plugin_fd);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__RESUME_DEVICES_LATE, int pid);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__PAUSE_DEVICES, int pid);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__CHECKPOINT_DEVICES, int pid);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__POST_FORKING, void);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__RESTORE_INIT, void);
DECLARE_PLUGIN_HOOK_ARGS(CR_PLUGIN_HOOK__DUMP_DEVICES_LATE, int id);

/* A plugin's self-description, exported under the name CR_PLUGIN_DESC. */
typedef struct {
	const char	*name;
	int		(*init)(int stage);
	void		(*exit)(int stage, int ret);
	unsigned int	version;
	unsigned int	max_hooks;
	void		*hooks[CR_PLUGIN_HOOK__MAX];
} cr_plugin_desc_t;

extern cr_plugin_desc_t CR_PLUGIN_DESC;

#define CR_PLUGIN_REGISTER(___name, ___init, ___exit)			\
	cr_plugin_desc_t CR_PLUGIN_DESC = {				\
		.name		= ___name,				\
		.init		= ___init,				\
		.exit		= ___exit,				\
		.version	= CRIU_PLUGIN_VERSION,			\
		.max_hooks	= CR_PLUGIN_HOOK__MAX,			\
	};

static inline int cr_plugin_dummy_init(int stage)
{
	(void)stage;
	return 0;
}

static inline void cr_plugin_dummy_exit(int stage, int ret)
{
	(void)stage;
	(void)ret;
}

/* A plugin with nothing to set up or tear down. */
#define CR_PLUGIN_REGISTER_DUMMY(___name)				\
	CR_PLUGIN_REGISTER(___name, cr_plugin_dummy_init, cr_plugin_dummy_exit)

/*
 * Put __func on __hook: a constructor fills the descriptor's slot when the
 * library is loaded, before refcr reads the descriptor.
 */
#define CR_PLUGIN_REGISTER_HOOK(__hook, __func)				\
	static void __attribute__((constructor))			\
	cr_plugin_register_hook_##__func(void)				\
	{								\
		CR_PLUGIN_DESC.hooks[__hook] = (void *)__func;		\
	}

/*
 * Old-style plugins (API 0.1.0) define plain functions that the loader finds
 * by name: cr_plugin_init, cr_plugin_fini, cr_plugin_dump_unix_sk,
 * cr_plugin_restore_unix_sk, cr_plugin_dump_file, cr_plugin_restore_file,
 * cr_plugin_dump_ext_mount, cr_plugin_restore_ext_mount,
 * cr_plugin_dump_ext_link, and (refcr only) cr_plugin_<hook name in lower
 * case> for the device hooks 7..14.  They are not declared here so that a
 * plugin may define them with or without the stage argument; their types
 * (cr_plugin_init_t, ...) are at the end of this file.
 */

/* Provided by refcr: an fd of the image directory, for openat() and friends. */
extern int criu_get_image_dir(void);

/*
 * The types of the first API's functions (CRIU marks them deprecated but
 * still declares them; plugins written for it use them in declarations
 * such as `cr_plugin_dump_file_t cr_plugin_dump_file;`).  The prototypes
 * are the old ones: init and fini take no stage, restore_file no
 * retry_needed.
 */
typedef int(cr_plugin_init_t)(void);
typedef void(cr_plugin_fini_t)(void);
typedef int(cr_plugin_dump_unix_sk_t)(int fd, int id);
typedef int(cr_plugin_restore_unix_sk_t)(int id);
typedef int(cr_plugin_dump_file_t)(int fd, int id);
typedef int(cr_plugin_restore_file_t)(int id);
typedef int(cr_plugin_dump_ext_mount_t)(char *mountpoint, int id);
typedef int(cr_plugin_restore_ext_mount_t)(int id, char *mountpoint, char *old_root, int *is_file);
typedef int(cr_plugin_dump_ext_link_t)(int index, int type, char *kind);
typedef int(cr_plugin_handle_device_vma_t)(int fd, const struct stat *stat);
typedef int(cr_plugin_update_vma_map_t)(const char *path, const uint64_t addr, const uint64_t old_pgoff,
					uint64_t *new_pgoff, int *plugin_fd);
typedef int(cr_plugin_resume_devices_late_t)(int pid);
typedef int(cr_plugin_post_forking_t)(void);

#endif /* __CRIU_PLUGIN_H__ */
