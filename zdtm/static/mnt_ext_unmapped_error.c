/* mnt_ext_unmapped_error: see mnt_ext.h; as mnt_ext_option00, and refused first: a dump naming no mount, a restore without the key, a restore with a key matching nothing. */
#define EXT_MODE EXT_UNMAPPED
#include "mnt_ext.h"
