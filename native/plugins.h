/* refcr._plugins: the plugin host's interface to Python (cdef'd by build_plugins.py). */

struct refcr_hook_args {
	int i0, i1;		/* fd, id, index, type, pid: in the prototype's order */
	char *s0, *s1;		/* mountpoint/path/kind, old_root */
	uint64_t u0, u1;	/* UPDATE_VMA_MAP: addr, old_pgoff */
	int out_int;		/* RESTORE_EXT_MOUNT: is_file; UPDATE_VMA_MAP: plugin_fd */
	uint64_t out_u64;	/* UPDATE_VMA_MAP: new_pgoff */
	int retry;		/* RESTORE_EXT_FILE: retry_needed */
};

void refcr_host_setup(int image_dir_fd, int loglevel);
int refcr_host_export(void);
void *refcr_dlopen(const char *path, int now, char *err, int errlen);
cr_plugin_desc_t *refcr_plugin_desc(void *h, const char *name, int *generated);
int refcr_plugin_init(cr_plugin_desc_t *d, int stage);
void refcr_plugin_exit(cr_plugin_desc_t *d, int stage, int ret);
int refcr_plugin_has_hook(cr_plugin_desc_t *d, int hook);
int refcr_plugin_call(cr_plugin_desc_t *d, int hook, struct refcr_hook_args *a);
