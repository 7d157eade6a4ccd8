/* mnt_ext_option00: see mnt_ext.h; refcr is told with --external mnt[WORKDIR/console]:console at dump and mnt[console]:PATH at restore (cr-opts.json). */
#define EXT_MODE EXT_OPTION
#include "mnt_ext.h"
