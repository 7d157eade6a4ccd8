/* mnt_ext_plugin00: see mnt_ext.h; no option names the mount: plugins/ext-mount takes it (DUMP_EXT_MOUNT) and binds it back (RESTORE_EXT_MOUNT). */
#define EXT_MODE EXT_PLUGIN
#include "mnt_ext.h"
